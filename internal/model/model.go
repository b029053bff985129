// Package model is keepvs's desired state: what a keepalived.conf asks for,
// typed, with keepalived's defaults filled in and every value checked.
// Building a model from a parsed file is pure (no I/O beyond what package
// conf read); Diff compares two models for a reload.
package model

import (
	"github.com/keepvs/keepvs/internal/conf"
)

// Config is a whole configuration.
type Config struct {
	Global Global `json:"global_defs"`
	VRRP
	LVS
}

// Build turns a parsed file into a Config. The Config is filled as far as
// the file allows even when there are errors, so a dump can show it; the
// caller must not run a Config whose diagnostics hold errors.
func Build(f *conf.File) (*Config, conf.Diagnostics) {
	b := newBuilder()
	c := &Config{Global: defaultGlobal(), VRRP: defaultVRRP(), LVS: defaultLVS()}
	walk(b, c, topTable(), "the top level", f.Nodes)
	c.finishVRRP(b)
	c.finishLVS(b)
	return c, b.diags
}

// Load reads, parses and builds the configuration at path: the same
// Config and diagnostics as ParseFile then Build, each top-level statement
// built as soon as it is read instead of after a tree of the whole file.
func Load(path string, opt conf.Options) (*Config, conf.Diagnostics) {
	b := newBuilder()
	c := &Config{Global: defaultGlobal(), VRRP: defaultVRRP(), LVS: defaultLVS()}
	top := topTable()
	_, diags := conf.ParseFileEach(path, opt, func(n *conf.Node) {
		walkOne(b, c, top, "the top level", n)
	})
	c.finishVRRP(b)
	c.finishLVS(b)
	return c, append(diags, b.diags...)
}

// topTable holds the keywords allowed outside any block.
func topTable() table[Config] {
	t := table[Config]{}
	addGlobalKeywords(t)
	addVRRPKeywords(t)
	addLVSKeywords(t)
	return t
}

// knownBlocks lists every block's keywords, for "it is a keyword of X"
// hints.
func knownBlocks() map[string][]string {
	m := map[string][]string{"the top level": keys(topTable())}
	vrrpBlocks(m)
	lvsBlocks(m)
	return m
}
