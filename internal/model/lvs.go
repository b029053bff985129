package model

// LVS is the load-balancer half of a configuration.
type LVS struct{}

func defaultLVS() LVS { return LVS{} }

func addLVSKeywords(t table[Config]) {}

func lvsBlocks(m map[string][]string) {}

func (c *Config) finishLVS(b *builder) {}
