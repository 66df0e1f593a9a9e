package words

// Stem strips common English inflections conservatively, in place. It is
// not Porter's algorithm: it only needs to map a word's forms to the same
// key, not to a real word ("make", "making" → "mak").
func Stem(w []byte) []byte {
	n := len(w)
	if n < 4 || !isASCIILetters(w) {
		return w
	}
	switch {
	case hasSuffix(w, "ies") && n > 4:
		w = append(w[:n-3], 'y')
	case hasSuffix(w, "sses"):
		w = w[:n-2]
	case hasSuffix(w, "es") && n > 4 && (hasSuffix(w[:n-2], "sh") || hasSuffix(w[:n-2], "ch") || w[n-3] == 'x' || w[n-3] == 'z'):
		w = w[:n-2]
	case w[n-1] == 's' && !hasSuffix(w, "ss") && !hasSuffix(w, "us") && !hasSuffix(w, "is"):
		w = w[:n-1]
	case hasSuffix(w, "ied") && n > 4:
		w = append(w[:n-3], 'y')
	case hasSuffix(w, "ed") && n > 4 && hasVowel(w[:n-2]):
		w = undouble(w[:n-2])
	case hasSuffix(w, "ing") && n > 5 && hasVowel(w[:n-3]):
		w = undouble(w[:n-3])
	}
	if len(w) > 3 && w[len(w)-1] == 'e' {
		w = w[:len(w)-1]
	}
	return w
}

// derivationalSuffixes are stripped from stemmed words (so without a
// plural s or a final e: "ativ" is "ative"), the first that fits, by their
// last letter.
var derivationalSuffixes = func() map[byte][]string {
	m := map[byte][]string{}
	for _, s := range []string{
		"ization", "ational", "ation", "ativ", "ically", "ical", "ian", "ial", "ic", "al", "iv",
		"ism", "ist", "ity", "ment", "ness", "ous", "ful", "ly",
	} {
		m[s[len(s)-1]] = append(m[s[len(s)-1]], s)
	}
	return m
}()

// StripDerivation removes one derivational suffix from a stemmed word when
// at least four letters remain, and a final e, y or i after that, so that
// "legislative" and "legislation" meet.
func StripDerivation(w []byte) []byte {
	if len(w) < 6 || !isASCIILetters(w) {
		return w
	}
	for _, s := range derivationalSuffixes[w[len(w)-1]] {
		if hasSuffix(w, s) && len(w)-len(s) >= 4 {
			w = w[:len(w)-len(s)]
			break
		}
	}
	if n := len(w); n > 4 && (w[n-1] == 'e' || w[n-1] == 'y' || w[n-1] == 'i') {
		w = w[:n-1]
	}
	return w
}

// undouble turns "stopp" into "stop" but keeps "fall", "miss", "buzz".
func undouble(w []byte) []byte {
	n := len(w)
	if n >= 3 && w[n-1] == w[n-2] && !isVowel(w[n-1]) && w[n-1] != 'l' && w[n-1] != 's' && w[n-1] != 'z' {
		return w[:n-1]
	}
	return w
}

func hasSuffix(w []byte, s string) bool {
	return len(w) >= len(s) && string(w[len(w)-len(s):]) == s
}

func isVowel(c byte) bool {
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y'
}

func hasVowel(w []byte) bool {
	for _, c := range w {
		if isVowel(c) {
			return true
		}
	}
	return false
}

func isASCIILetters(w []byte) bool {
	for _, c := range w {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
