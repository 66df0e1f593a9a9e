package words

// stopWords are English function words that carry no topic. Question words
// are among them: they say what kind of answer is wanted, not where it is.
var stopWords = []string{
	"a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
	"be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
	"can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further",
	"had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
	"i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself",
	"no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves",
	"out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
	"theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
	"under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
	"whom", "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
	"s", "t", "don", "also", "may", "might", "must", "shall", "upon", "within", "without", "yet",
}

// stopTable holds the hashes of stopWords in an open-addressing table,
// cheaper than a map lookup for every word the offline embedder reads.
var stopTable = func() (t [stopTableSize]uint64) {
	for _, w := range stopWords {
		h := Hash([]byte(w))
		i := h & (stopTableSize - 1)
		for t[i] != 0 {
			i = (i + 1) & (stopTableSize - 1)
		}
		t[i] = h
	}
	return t
}()

const stopTableSize = 512 // a power of two, over twice len(stopWords)

// IsStopWord reports whether a lower-case word is an English stop word.
func IsStopWord(w []byte) bool {
	if len(w) > 10 { // longer than any stop word
		return false
	}
	h := Hash(w)
	for i := h & (stopTableSize - 1); stopTable[i] != 0; i = (i + 1) & (stopTableSize - 1) {
		if stopTable[i] == h {
			return true
		}
	}
	return false
}

// Hash is the 64-bit FNV-1a hash of a word.
func Hash(w []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range w {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
