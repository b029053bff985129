//go:build !linux

package ipvs

// dialBatch: batches are Linux's netlink; elsewhere one request at a time.
func dialBatch() batchConn { return nil }
