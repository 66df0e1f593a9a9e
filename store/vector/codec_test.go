package vector

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
	b := Halfvec([]float32{1, -2}, 4)
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

// denseBlob is v as every SQLite vector blob was before the sparse format:
// little-endian float32s.
func denseBlob(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func TestEncodeVector(t *testing.T) {
	sparse := make([]float32, 2000)
	sparse[3], sparse[700], sparse[1999] = 0.5, -0.25, 1e-30
	sparse[9] = float32(math.Copysign(0, -1)) // a zero all the same
	dense := []float32{1, -2, 0, 3.5}
	for _, tc := range []struct {
		name    string
		v       []float32
		wantLen int
	}{
		{"sparse", sparse, 1 + 3*6},
		{"dense", dense, 4 * len(dense)},
		{"zero", make([]float32, 8), 1},
		{"empty", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Encode(tc.v)
			if len(b) != tc.wantLen {
				t.Fatalf("got %d bytes, want %d", len(b), tc.wantLen)
			}
			if len(b)%4 == 0 && string(b) != string(denseBlob(tc.v)) {
				t.Errorf("got a dense blob unlike the float32s of the vector")
			}
		})
	}
}

// norm is v's Euclidean norm, in float64.
func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// Cosine scores a vector alike in both formats, old blobs included, to the
// last bit.
func TestCosineFormats(t *testing.T) {
	v := make([]float32, 2000)
	q := make([]float32, 2000)
	for i := range q {
		q[i] = float32(math.Sin(float64(i)))
		if i%7 == 0 {
			v[i] = float32(math.Cos(float64(i))) / 3
		}
	}
	sparse := Encode(v)
	if len(sparse)%4 == 0 {
		t.Fatalf("got a dense blob of %d bytes for a sparse vector", len(sparse))
	}
	old := denseBlob(v)
	got, want := Cosine(q, norm(q), sparse), Cosine(q, norm(q), old)
	if got != want || want == 0 {
		t.Errorf("Cosine of the sparse blob: got %v, want %v as of the dense one", got, want)
	}
	if got := Cosine(q, norm(q), Encode(q)); math.Abs(got-1) > 1e-6 {
		t.Errorf("Cosine of q and its own dense blob: got %v, want 1", got)
	}
	// A shorter query (another model's) reads the blob's prefix, as before.
	if got, want := Cosine(q[:100], norm(q[:100]), sparse), Cosine(q[:100], norm(q[:100]), old); got != want {
		t.Errorf("Cosine with a 100-number query: got %v, want %v", got, want)
	}
	for _, bad := range [][]byte{{2, 0, 0, 0, 0, 0, 0}, {sparseMark, 1, 0}, {sparseMark}} {
		if got := Cosine(q, norm(q), bad); got != 0 {
			t.Errorf("Cosine of the blob %v: got %v, want 0", bad, got)
		}
	}
}
