package console

import (
	"embed"
	"io/fs"
)

// The web UI (docs/console.md): plain HTML, CSS and JavaScript modules
// with no build step, and uPlot under web/vendor/uplot (fetched by
// scripts/vendor-uplot.sh, checked in). Everything is in the binary: the
// console serves no file from disk and loads nothing from elsewhere.
//
//go:embed web
var web embed.FS

// Assets is the UI's file tree, rooted at web/: index.html at its top.
func Assets() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		// fs.Sub fails only for an invalid path; "web" is a constant.
		panic("console: " + err.Error())
	}
	return sub
}
