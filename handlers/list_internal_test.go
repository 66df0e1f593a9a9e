package handlers

import (
	"slices"
	"testing"

	"silo/models"
)

// The documents list filters by title or file name in any case, and sorts
// by name or size, or keeps the newest first.
func TestListView(t *testing.T) {
	docs := []models.Document{ // newest first, as read
		{Title: "zebra notes", FileName: "z.pdf", SizeBytes: 10},
		{Title: "Apple report", FileName: "annual-2024.pdf", SizeBytes: 30},
		{Title: "mango", FileName: "m.pdf", SizeBytes: 20},
	}
	titles := func(v listView) []string {
		var out []string
		for _, d := range v.apply(slices.Clone(docs)) {
			out = append(out, d.Title)
		}
		return out
	}
	for _, tc := range []struct {
		v    listView
		want []string
	}{
		{listView{}, []string{"zebra notes", "Apple report", "mango"}},
		{listView{Sort: "name"}, []string{"Apple report", "mango", "zebra notes"}},
		{listView{Sort: "size"}, []string{"Apple report", "mango", "zebra notes"}},
		{listView{Sort: "nonsense"}, []string{"zebra notes", "Apple report", "mango"}},
		{listView{Q: "ANNUAL"}, []string{"Apple report"}},
		{listView{Q: "E", Sort: "name"}, []string{"Apple report", "zebra notes"}},
		{listView{Q: "nothing"}, nil},
	} {
		if got := titles(tc.v); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := (listView{Q: "a b&c", Sort: "name"}).Query(); got != "q=a+b%26c&sort=name" {
		t.Errorf("Query() = %q", got)
	}
}
