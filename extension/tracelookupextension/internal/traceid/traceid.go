// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package traceid parses the trace id forms the lookup API accepts.
package traceid // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/traceid"

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
)

// Accepted names the accepted forms, for error messages.
const Accepted = "a 32-character hex string (128-bit), a 16-character hex string (64-bit), " +
	"or a decimal string of up to 39 digits below 2^128; not all zero"

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid trace id")

// Candidate is one reading of a trace id string.
type Candidate struct {
	// ID is the 128-bit trace id; a 64-bit input fills the low half.
	ID [16]byte
	// Is64Bit is set for 64-bit inputs, which may also match a stored trace by its low 64 bits.
	Is64Bit bool
}

// Low64 is the low 64 bits of the id.
func (c Candidate) Low64() uint64 { return binary.BigEndian.Uint64(c.ID[8:]) }

// Parse reads s as a trace id. A 16-character string of decimal digits is both
// valid hex and valid decimal: both readings are returned, hex first. A
// 32-character string is always hex.
func Parse(s string) ([]Candidate, error) {
	var out []Candidate
	switch len(s) {
	case 32:
		var c Candidate
		if _, err := hex.Decode(c.ID[:], []byte(s)); err == nil {
			out = append(out, c)
		}
	case 16:
		c := Candidate{Is64Bit: true}
		if _, err := hex.Decode(c.ID[8:], []byte(s)); err == nil {
			out = append(out, c)
		}
	}
	if len(out) == 0 || (len(s) == 16 && allDigits(s)) {
		if c, ok := parseDecimal(s); ok {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %s: a trace id must be %s", ErrInvalid, quoteShort(s), Accepted)
	}
	for _, c := range out {
		if c.ID == ([16]byte{}) {
			return nil, fmt.Errorf("%w %s: the all-zero trace id is not valid; a trace id must be %s", ErrInvalid, quoteShort(s), Accepted)
		}
	}
	return out, nil
}

// quoteShort quotes s for an error message, cut short so a huge input is not echoed back whole.
func quoteShort(s string) string {
	const maxShown = 64
	if len(s) > maxShown {
		return strconv.Quote(s[:maxShown]) + "..."
	}
	return strconv.Quote(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func parseDecimal(s string) (Candidate, bool) {
	if len(s) == 0 || len(s) > 39 || !allDigits(s) {
		return Candidate{}, false
	}
	var hi, lo uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		// (hi, lo) = (hi, lo) * 10 + d, failing on overflow past 128 bits.
		hiCarry, hiMul := bits.Mul64(hi, 10)
		loHi, loMul := bits.Mul64(lo, 10)
		var c uint64
		lo, c = bits.Add64(loMul, d, 0)
		var c2 uint64
		hi, c2 = bits.Add64(hiMul, loHi, c)
		if hiCarry != 0 || c2 != 0 {
			return Candidate{}, false
		}
	}
	var c Candidate
	binary.BigEndian.PutUint64(c.ID[:8], hi)
	binary.BigEndian.PutUint64(c.ID[8:], lo)
	c.Is64Bit = hi == 0
	return c, true
}
