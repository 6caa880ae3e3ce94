// Package version holds the version stamped into Ferry's binaries at build
// time (the Makefile's GO_LDFLAGS set Version from `git describe`).
package version

// Version is Ferry's version, "dev" in an unstamped build.
var Version = "dev"
