package render

import "testing"

func TestShapeArabic(t *testing.T) {
	tests := []struct{ in, want, name string }{
		// beh alone; beh beh: initial + final; beh beh beh: initial, medial, final.
		{"\u0628", "\uFE8F", "isolated"},
		{"\u0628\u0628", "\uFE91\uFE90", "initial and final"},
		{"\u0628\u0628\u0628", "\uFE91\uFE92\uFE90", "medial"},
		// alef does not join the next letter: beh after it starts again.
		{"\u0628\u0627\u0628", "\uFE91\uFE8E\uFE8F", "right-joining alef"},
		// lam + alef: the ligature; after a joining letter its final form.
		{"\u0644\u0627", "\uFEFB", "lam-alef"},
		{"\u0628\u0644\u0627", "\uFE91\uFEFC", "lam-alef final"},
		// marks are transparent: beh, fatha, beh still join.
		{"\u0628\u064E\u0628", "\uFE91\u064E\uFE90", "harakat"},
		{"abc 123", "abc 123", "no Arabic"},
	}
	for _, tt := range tests {
		if got := shapeArabic(tt.in); got != tt.want {
			t.Errorf("%s: %U, want %U", tt.name, []rune(got), []rune(tt.want))
		}
	}
}

func TestVisualLine(t *testing.T) {
	tests := []struct {
		name, in, want string
		rtl            bool
	}{
		{"latin", "Hello, world", "Hello, world", false},
		{"hebrew", "שלום עולם", "םלוע םולש", true},
		{"hebrew with a number", "מחיר 120 שקל", "לקש 120 ריחמ", true},
		{"hebrew in a latin line", "Shalom is שלום here", "Shalom is םולש here", false},
		{"latin in a hebrew line", "שלום Bob!", "!Bob םולש", true},
	}
	for _, tt := range tests {
		got, rtl := visualLine(tt.in)
		if got != tt.want || rtl != tt.rtl {
			t.Errorf("%s: %q rtl=%v, want %q rtl=%v", tt.name, got, rtl, tt.want, tt.rtl)
		}
	}
}
