//go:build tools

// Package tools pins the atlas CLI, built with:
//
//	cd tools/atlas && go build -o ../../bin/atlas ariga.io/atlas/cmd/atlas
package tools

import _ "ariga.io/atlas/cmd/atlas"
