// Package vector holds how a tenant's vectors are stored and searched in
// this process: the SQLite blob formats and PostgreSQL's binary halfvec
// (codec.go), cosines of stored blobs, and each SQLite tenant's in-memory
// index of its sparse vectors (index.go).
package vector

import (
	"encoding/binary"
	"math"
)

// sparseMark is the first byte of a sparse vector blob on SQLite.
const sparseMark = 1

// Encode is v as a SQLite blob, in one of two formats, both exact:
//
//   - dense: v's values as little-endian float32s, 4 bytes each (the only
//     format before the sparse one, so every older blob is dense);
//   - sparse: the byte sparseMark, then for each non-zero value in index
//     order its index as a little-endian uint16 and the value as a
//     little-endian float32, 6 bytes each.
//
// A dense blob's length is a multiple of 4 and a sparse one's is odd, so
// the length tells them apart (Cosine decodes both). The sparse format is
// used when it is smaller: the offline hash embedder's vectors have a few
// hundred non-zero values in 2,000, so their blobs shrink about 5×, and
// with them the pages SQLite writes through its WAL.
func Encode(v []float32) []byte {
	nonZero := 0
	for _, f := range v {
		if f != 0 {
			nonZero++
		}
	}
	if len(v) > 1<<16 || 1+6*nonZero >= 4*len(v) {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	}
	b := make([]byte, 1, 1+6*nonZero)
	b[0] = sparseMark
	for i, f := range v {
		if f != 0 {
			b = binary.LittleEndian.AppendUint16(b, uint16(i))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
	}
	return b
}

// Halfvec is v as pgvector's binary halfvec (halfvec_recv), zero-padded
// to dims: the dimension count and a zero, then each value as an IEEE
// half-precision float rounded to nearest even, all big-endian.
func Halfvec(v []float32, dims int) []byte {
	b := make([]byte, 4, 4+2*dims)
	binary.BigEndian.PutUint16(b, uint16(dims))
	for _, f := range v {
		b = binary.BigEndian.AppendUint16(b, float16Bits(f))
	}
	return append(b, make([]byte, 2*(dims-len(v)))...)
}

// float16Bits converts f to an IEEE 754 half-precision float, rounding to
// nearest even as pgvector does; out of range it gives ±Inf, which pgvector
// refuses as it refuses the text form of such a number.
func float16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b>>23&0xff == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0: // a subnormal half, or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		return sign | uint16(roundShift(mant, shift))
	}
	// A carry out of the mantissa rightly bumps the exponent.
	return sign | uint16(uint32(exp)<<10+roundShift(mant, 13))
}

// roundShift is x >> shift, rounded to nearest even.
func roundShift(x uint32, shift uint) uint32 {
	r, rem, half := x>>shift, x&(1<<shift-1), uint32(1)<<(shift-1)
	if rem > half || rem == half && r&1 == 1 {
		r++
	}
	return r
}

// Cosine is the Cosine similarity of q, whose norm is qNorm, and a stored
// vector blob, dense or sparse (see Encode); both give the same score
// for the same vector. A blob of neither format scores 0.
func Cosine(q []float32, qNorm float64, stored []byte) float64 {
	var dot, nb float64
	switch {
	case len(stored)%4 == 0: // dense
		for i := 0; i+4 <= len(stored) && i/4 < len(q); i += 4 {
			b := float64(math.Float32frombits(binary.LittleEndian.Uint32(stored[i:])))
			dot += float64(q[i/4]) * b
			nb += b * b
		}
	case stored[0] == sparseMark && len(stored)%6 == 1:
		for p := stored[1:]; len(p) >= 6; p = p[6:] {
			i := int(binary.LittleEndian.Uint16(p))
			if i >= len(q) {
				break // indices ascend
			}
			b := float64(math.Float32frombits(binary.LittleEndian.Uint32(p[2:])))
			dot += float64(q[i]) * b
			nb += b * b
		}
	}
	if nb == 0 || qNorm == 0 {
		return 0
	}
	return dot / (math.Sqrt(nb) * qNorm)
}
