package vector

import (
	"cmp"
	"container/heap"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"sync"

	"github.com/uptrace/bun"
)

// A SQLite tenant's vector search ranks every chunk of the documents
// exactly, without reading every chunk's vector from the database for each
// search: the vectors of a tenant are held in memory as an inverted index
// of their dimensions (Index), made from the
// database once and again whenever its chunks have changed (meta's
// chunks_version, counted by triggers on chunks, from any process). The
// offline hash embedder's vectors are sparse, a few hundred non-zero values
// of 2,000, and a question's a few dozen: a search adds up only the
// postings of the question's dimensions. The scores are the ones Cosine
// gives, to the bit (the same products, added in the same order).
//
// An index takes 8 bytes for each non-zero value (about 33 MB for 18,000
// chunks of the hash embedder's); the indexes of all tenants together are
// kept under Budget, the least recently searched dropped first.
// A tenant whose index would not fit (about 240 documents of the hash
// embedder's), or whose vectors are dense (a model's), is searched by
// reading every vector (store.sqlite.scanNearest).

// Budget is the most memory the in-memory vector indexes of all
// SQLite tenants take together, in bytes.
var Budget int64 = 64 << 20

// metaChunksVersion is the meta key of the count of writes to chunks.
const metaChunksVersion = "chunks_version"

// Index is a tenant's vectors as postings by dimension.
type Index struct {
	version string // meta's chunks_version it was made at
	ids     []int64
	docs    []int32          // each chunk's document, as its ordinal in docIDs
	docIDs  map[string]int32 // the documents' ordinals
	norms   []float64        // each chunk's squared norm, summed as Cosine sums it
	dims    [][]posting      // by dimension, in chunk order
	bytes   int64
}

// posting is a chunk's non-zero value in one dimension.
type posting struct {
	chunk uint32
	value float32
}

// vectorIndexes holds the tenants' indexes, by database, least recently
// used first.
var vectorIndexes = struct {
	sync.Mutex
	byDB  map[*bun.DB]*vectorIndexEntry
	order []*bun.DB
	bytes int64
}{byDB: map[*bun.DB]*vectorIndexEntry{}}

// vectorIndexEntry is one tenant's index; mu is held while it is made.
type vectorIndexEntry struct {
	mu  sync.Mutex
	idx *Index // nil until made, or when it cannot be (see unfit)
	// unfit is the version at which the vectors were found dense or too
	// big for the budget: searched by reading them until it changes.
	unfit string
}

// ErrNoIndex means a tenant's vectors are searched by reading them all.
var ErrNoIndex = errors.New("no in-memory vector index")

// IndexOf returns the tenant's index at its current version, made if
// need be, or ErrNoIndex.
func IndexOf(ctx context.Context, db *bun.DB) (*Index, error) {
	var version string
	err := db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", metaChunksVersion).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoIndex // a database of an older schema
	}
	if err != nil {
		return nil, err
	}
	vectorIndexes.Lock()
	e := vectorIndexes.byDB[db]
	if e == nil {
		e = &vectorIndexEntry{}
		vectorIndexes.byDB[db] = e
	}
	vectorIndexes.order = append(slices.DeleteFunc(vectorIndexes.order, func(d *bun.DB) bool { return d == db }), db)
	vectorIndexes.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.idx != nil && e.idx.version == version {
		return e.idx, nil
	}
	if e.unfit == version {
		return nil, ErrNoIndex
	}
	old := int64(0)
	if e.idx != nil {
		old = e.idx.bytes
	}
	idx, err := buildSparseIndex(ctx, db, version)
	if errors.Is(err, ErrNoIndex) {
		e.idx, e.unfit = nil, version
		account(-old)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	e.idx = idx
	account(idx.bytes - old)
	evict(db)
	return idx, nil
}

// account adds n bytes to the indexes' total.
func account(n int64) {
	vectorIndexes.Lock()
	vectorIndexes.bytes += n
	vectorIndexes.Unlock()
}

// evict drops the least recently used indexes, other than keep's, while
// the total is over budget.
func evict(keep *bun.DB) {
	vectorIndexes.Lock()
	defer vectorIndexes.Unlock()
	for i := 0; vectorIndexes.bytes > Budget && i < len(vectorIndexes.order); {
		db := vectorIndexes.order[i]
		if db == keep {
			i++
			continue
		}
		e := vectorIndexes.byDB[db]
		if e.mu.TryLock() {
			if e.idx != nil {
				vectorIndexes.bytes -= e.idx.bytes
			}
			delete(vectorIndexes.byDB, db)
			vectorIndexes.order = slices.Delete(vectorIndexes.order, i, i+1)
			e.idx = nil
			e.mu.Unlock()
			continue
		}
		i++
	}
}

// buildSparseIndex reads the tenant's vectors into an index, or returns
// ErrNoIndex when one is dense or they would not fit in the budget.
func buildSparseIndex(ctx context.Context, db *bun.DB, version string) (*Index, error) {
	rows, err := db.QueryContext(ctx, "SELECT id, document_id, embedding FROM chunks WHERE embedding IS NOT NULL ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	idx := &Index{version: version, docIDs: map[string]int32{}}
	var blobs [][]byte
	var counts []int
	var total int64
	for rows.Next() {
		var id int64
		var doc string
		var blob []byte
		if err := rows.Scan(&id, &doc, &blob); err != nil {
			return nil, err
		}
		if len(blob)%4 == 0 || blob[0] != sparseMark || len(blob)%6 != 1 {
			return nil, ErrNoIndex // dense (or of no format: Cosine scores it 0)
		}
		d, ok := idx.docIDs[doc]
		if !ok {
			d = int32(len(idx.docIDs))
			idx.docIDs[doc] = d
		}
		total += int64(len(blob) / 6)
		if total*8 > Budget {
			return nil, ErrNoIndex
		}
		idx.ids = append(idx.ids, id)
		idx.docs = append(idx.docs, d)
		blobs = append(blobs, blob)
		for p := blob[1:]; len(p) >= 6; p = p[6:] {
			i := int(binary.LittleEndian.Uint16(p))
			if i >= len(counts) {
				counts = append(counts, make([]int, i+1-len(counts))...)
			}
			counts[i]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	idx.dims = make([][]posting, len(counts))
	for i, n := range counts {
		idx.dims[i] = make([]posting, 0, n)
	}
	idx.norms = make([]float64, len(blobs))
	for c, blob := range blobs {
		var nb float64
		for p := blob[1:]; len(p) >= 6; p = p[6:] {
			i := int(binary.LittleEndian.Uint16(p))
			v := math.Float32frombits(binary.LittleEndian.Uint32(p[2:]))
			b := float64(v)
			nb += b * b
			idx.dims[i] = append(idx.dims[i], posting{uint32(c), v})
		}
		idx.norms[c] = nb
	}
	idx.bytes = total*8 + int64(len(blobs))*(8+4+8)
	return idx, nil
}

// nearest returns the ids and scores of the n chunks of the documents
// closest to q by Cosine, best first (ties by id), as Cosine scores them.
func (idx *Index) Nearest(docs []string, q []float32, qNorm float64, n int) ([]int64, []float64) {
	allowed := make([]bool, len(idx.docIDs))
	found := false
	for _, d := range docs {
		if o, ok := idx.docIDs[d]; ok {
			allowed[o], found = true, true
		}
	}
	if !found {
		return nil, nil
	}
	dot := make([]float64, len(idx.ids))
	// Dimensions in ascending order, as Cosine walks a sparse blob: each
	// chunk's products are added in the same order.
	for i, qi := range q {
		if qi == 0 || i >= len(idx.dims) {
			continue
		}
		qf := float64(qi)
		for _, p := range idx.dims[i] {
			dot[p.chunk] += qf * float64(p.value)
		}
	}
	h := &topHeap{}
	for c, d := range dot {
		if !allowed[idx.docs[c]] {
			continue
		}
		s := 0.0
		if nb := idx.norms[c]; nb != 0 && qNorm != 0 {
			s = d / (math.Sqrt(nb) * qNorm)
		}
		if h.Len() < n {
			heap.Push(h, scored{s, idx.ids[c]})
		} else if worse((*h)[0], scored{s, idx.ids[c]}) {
			(*h)[0] = scored{s, idx.ids[c]}
			heap.Fix(h, 0)
		}
	}
	top := []scored(*h)
	slices.SortFunc(top, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	ids, scores := make([]int64, len(top)), make([]float64, len(top))
	for i, t := range top {
		ids[i], scores[i] = t.id, t.score
	}
	return ids, scores
}

// scored is a chunk's id and score.
type scored struct {
	score float64
	id    int64
}

// worse reports whether a ranks below b (a lower score, or the same and a
// higher id).
func worse(a, b scored) bool {
	return a.score < b.score || a.score == b.score && a.id > b.id
}

// topHeap keeps the best n chunks, the worst of them on top.
type topHeap []scored

func (h topHeap) Len() int           { return len(h) }
func (h topHeap) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h topHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *topHeap) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *topHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
