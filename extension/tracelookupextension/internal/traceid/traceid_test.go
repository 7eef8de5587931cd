// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package traceid

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in   string
		want []string // hex of candidates
		is64 []bool
	}{
		{in: "0AF7651916CD43DD8448EB211C80319C", want: []string{"0af7651916cd43dd8448eb211c80319c"}, is64: []bool{false}},
		{in: "8448eb211c80319c", want: []string{"00000000000000008448eb211c80319c"}, is64: []bool{true}},
		{in: "1", want: []string{"00000000000000000000000000000001"}, is64: []bool{true}},
		{in: "18446744073709551615", want: []string{"0000000000000000ffffffffffffffff"}, is64: []bool{true}},
		{in: "18446744073709551616", want: []string{"00000000000000010000000000000000"}, is64: []bool{false}},
		{in: "340282366920938463463374607431768211455", want: []string{"ffffffffffffffffffffffffffffffff"}, is64: []bool{false}},
		// 16 digits: hex first, then decimal.
		{in: "1234567890123456", want: []string{"00000000000000001234567890123456", "0000000000000000000462d53c8abac0"}, is64: []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.Equal(t, tt.want[i], hex.EncodeToString(got[i].ID[:]))
				assert.Equal(t, tt.is64[i], got[i].Is64Bit)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"xyz",
		"00000000000000000000000000000000",
		"0000000000000000",
		"0",
		"0af7651916cd43dd8448eb211c80319",   // 31 hex
		"0af7651916cd43dd8448eb211c80319c0", // 33 hex
		"0af7651916cd43dd8448eb211c80319g",
		"340282366920938463463374607431768211456",  // 2^128
		"1000000000000000000000000000000000000000", // 40 digits
		"-1",
		"+1",
		" 1",
		"8448eb211c80319",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), "32-character hex")
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0af7651916cd43dd8448eb211c80319c", "8448eb211c80319c", "123", "340282366920938463463374607431768211455", "zz"} {
		f.Add(s)
	}
	max128 := new(big.Int).Lsh(big.NewInt(1), 128)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if err != nil {
			return
		}
		for _, c := range got {
			if c.ID == ([16]byte{}) {
				t.Fatalf("zero id accepted for %q", s)
			}
			hexForm := hex.EncodeToString(c.ID[:])
			switch {
			case len(s) == 32 && strings.EqualFold(hexForm, s):
			case len(s) == 16 && strings.EqualFold(hexForm[16:], s):
			default:
				n, ok := new(big.Int).SetString(s, 10)
				if !ok || n.Cmp(max128) >= 0 || n.Text(16) != strings.TrimLeft(hexForm, "0") {
					t.Fatalf("%q parsed to %s", s, hexForm)
				}
			}
		}
	})
}
