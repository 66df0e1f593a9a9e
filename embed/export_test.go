package embed

import "strings"

// The texts the hash embedder's tests embed, shared by the internal and the
// external ones.

// SampleText is three sentences of English prose with numbers.
const SampleText = `The Saxon Garden, covering the area of 15.5 ha, was formally a royal garden.
There are over 100 different species of trees and the avenues are a place to sit and relax.
At the east end of the park, the Tomb of the Unknown Soldier is situated.`

// BenchText is a 1,000-character passage of English prose.
func BenchText(i int) string {
	words := strings.Fields(SampleText + " Demographically, it was the most diverse city in Poland, with significant numbers of foreign-born inhabitants. In addition to the Polish majority, there was a significant Jewish minority in Warsaw. According to Russian census of 1897, out of the total population of 638,000, Jews constituted 219,000 (around 34% percent). Warsaw's prewar Jewish population of more than 350,000 constituted about 30 percent of the city's total population.")
	var b strings.Builder
	for j := i; b.Len() < 1000; j++ {
		b.WriteString(words[j%len(words)])
		b.WriteByte(' ')
	}
	return b.String()[:1000]
}
