// Package console holds the browser console's assets — HTML, CSS and
// JavaScript embedded in the binary, no external asset, no CDN. The api
// package serves them under /console/ and the console's JSON endpoints
// under /console/api/ (api/face_console.go); the pages only ever call those
// endpoints, as the signed-in identity.
package console

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Assets is the console's files, rooted at the directory the browser sees
// as /console/ (index.html at its top).
var Assets fs.FS = mustSub(static, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
