package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for torii when torii bench --spawn
// starts "itself" (os.Executable is the test binary under go test).
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
