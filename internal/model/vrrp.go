package model

// VRRP is the VRRP half of a configuration.
type VRRP struct{}

func defaultVRRP() VRRP { return VRRP{} }

func addVRRPKeywords(t table[Config]) {}

func vrrpBlocks(m map[string][]string) {}

func (c *Config) finishVRRP(b *builder) {}
