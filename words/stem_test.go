package words_test

import (
	"hash/fnv"
	"testing"

	"silo/words"
)

func TestStem(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// The forms of a word meet, not always at a real word.
		{"pipe", "pip"}, {"pipes", "pip"}, {"piping", "pip"}, {"piped", "pip"},
		{"study", "study"}, {"studies", "study"}, {"studied", "study"},
		{"box", "box"}, {"boxes", "box"}, {"church", "church"}, {"churches", "church"},
		{"buzzes", "buzz"}, {"buzzed", "buzz"},
		{"stop", "stop"}, {"stopped", "stop"}, {"stopping", "stop"},
		{"make", "mak"}, {"making", "mak"},
		{"use", "use"}, {"uses", "use"},
		{"flies", "fly"}, {"ties", "tie"},
		{"glasses", "glass"}, {"need", "need"}, {"needed", "need"},
		{"sing", "sing"}, {"singing", "sing"},
		// Double l, s and z are kept; so are -ss, -us and -is.
		{"fall", "fall"}, {"falling", "fall"}, {"class", "class"}, {"clas", "cla"},
		{"status", "status"}, {"analysis", "analysis"},
		// Short words, and words of anything but a-z, are left alone.
		{"bus", "bus"}, {"red", "red"}, {"cafés", "cafés"}, {"1990s", "1990s"}, {"Pipes", "Pipes"},
	} {
		if got := string(words.Stem([]byte(tc.in))); got != tc.want {
			t.Errorf("Stem(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStripDerivation(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Stemmed words: "legislative" and "active" lost their final e.
		{"legislativ", "legisl"}, {"legislation", "legisl"},
		{"national", "nation"}, {"nation", "nation"},
		{"government", "govern"}, {"govern", "govern"},
		{"economic", "econom"}, {"economical", "econom"}, {"economically", "econom"}, {"economy", "econom"},
		{"activity", "activ"}, {"activ", "activ"},
		{"organization", "organ"}, {"dangerous", "danger"}, {"kindness", "kind"}, {"quickly", "quick"},
		// At least four letters stay; short words are left alone.
		{"music", "music"}, {"nationalism", "national"},
		{"économique", "économique"},
	} {
		if got := string(words.StripDerivation([]byte(tc.in))); got != tc.want {
			t.Errorf("StripDerivation(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsStopWord(t *testing.T) {
	for _, tc := range []struct {
		w    string
		want bool
	}{
		{"the", true}, {"of", true}, {"what", true}, {"which", true}, {"s", true}, {"t", true}, {"don", true},
		{"yourselves", true}, {"themselves", true}, {"without", true},
		// Lower-case words only.
		{"The", false},
		{"", false}, {"pipe", false}, {"thee", false}, {"warsaw", false}, {"1973", false}, {"yourselvesx", false},
	} {
		if got := words.IsStopWord([]byte(tc.w)); got != tc.want {
			t.Errorf("IsStopWord(%q) = %v, want %v", tc.w, got, tc.want)
		}
	}
}

func TestHash(t *testing.T) {
	for _, w := range []string{"", "a", "foobar", "kraków", "1,178,914"} {
		h := fnv.New64a()
		_, _ = h.Write([]byte(w))
		if got, want := words.Hash([]byte(w)), h.Sum64(); got != want {
			t.Errorf("Hash(%q) = %#x, want FNV-1a %#x", w, got, want)
		}
	}
}
