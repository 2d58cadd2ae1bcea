// Package bridge holds the files the bridge binary carries with it: the demo directory and
// the configuration `bridge demo` runs with (testdata/demo), so that the demo works from any
// directory and from the container image. The program itself is cmd/bridge.
package bridge

import "embed"

// Demo holds testdata/demo: directory.ldif (an LDIF export of a small contact centre) and
// config.yaml (the demo's configuration).
//
//go:embed testdata/demo
var Demo embed.FS
