package handlers_test

import (
	"os"
	"testing"

	"silo/testrig"
)

// TestMain lets the test binary double as silo's PDF reader child.
func TestMain(m *testing.M) {
	testrig.RunExtractChild()
	os.Exit(m.Run())
}
