package model

// Global is the global_defs block.
type Global struct {
	RouterID string `json:"router_id,omitempty"`
}

func defaultGlobal() Global { return Global{} }

func addGlobalKeywords(t table[Config]) {}
