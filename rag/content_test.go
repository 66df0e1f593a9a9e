package rag

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestFloat16Bits(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{0.1, 0x2e66},
		{65504, 0x7bff},   // the largest half
		{65520, 0x7c00},   // rounds up to infinity
		{1e6, 0x7c00},     // out of range
		{0x1p-14, 0x0400}, // the smallest normal half
		{0x1p-24, 0x0001}, // the smallest subnormal half
		{0x1p-25, 0x0000}, // a tie between 0 and 2^-24: to even
		{0x1.8p-24, 0x0002},
		{1 + 0x1p-11, 0x3c00}, // a tie: to even
		{1 + 0x3p-11, 0x3c02}, // a tie: to even
		{1 + 0x1.8p-11, 0x3c01},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.NaN()), 0x7e00},
	} {
		if got := float16Bits(tc.f); got != tc.want {
			t.Errorf("float16Bits(%g): got %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
}

func TestHalfvecBinary(t *testing.T) {
	b := halfvecBinary([]float32{1, -2}, 4)
	if len(b) != 4+2*4 {
		t.Fatalf("got %d bytes, want 12", len(b))
	}
	want := []uint16{4, 0, 0x3c00, 0xc000, 0, 0}
	for i, w := range want {
		if got := binary.BigEndian.Uint16(b[2*i:]); got != w {
			t.Errorf("word %d: got %#04x, want %#04x", i, got, w)
		}
	}
}
