package api

import (
	"errors"
	"net/http"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// errorCodes name the table's sentinel errors on the wire, so a client gets
// back an error that errors.Is recognises (ipvsadm words each differently).
var errorCodes = []struct {
	code   string
	err    error
	status int
}{
	{"service_exists", lvs.ErrServiceExists, http.StatusConflict},
	{"no_service", lvs.ErrNoService, http.StatusNotFound},
	{"dest_exists", lvs.ErrDestExists, http.StatusConflict},
	{"no_dest", lvs.ErrNoDest, http.StatusNotFound},
	{"no_scheduler", lvs.ErrNoScheduler, http.StatusBadRequest},
	{"no_pe", lvs.ErrNoPE, http.StatusBadRequest},
	{"range", lvs.ErrRange, http.StatusBadRequest},
	{"invalid", lvs.ErrInvalid, http.StatusBadRequest},
	{"not_supported", dataplane.ErrNotSupported, http.StatusNotImplemented},
	{"no_virtual_server", engine.ErrNoVirtualServer, http.StatusNotFound},
	{"no_real_server", engine.ErrNoRealServer, http.StatusNotFound},
	{"real_server_exists", engine.ErrRealServerTaken, http.StatusConflict},
	{"sync_daemon_running", ipvsadm.ErrDaemonRunning, http.StatusConflict},
	{"no_sync_daemon", ipvsadm.ErrNoDaemon, http.StatusNotFound},
}

// errorBody is the JSON of a failed call.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

func encodeError(err error) (int, errorBody) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.status, errorBody{Error: err.Error(), Code: c.code}
		}
	}
	return http.StatusInternalServerError, errorBody{Error: err.Error()}
}

// remoteError is an error the daemon returned; it unwraps to the sentinel
// its code names.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func decodeError(b errorBody) error {
	for _, c := range errorCodes {
		if c.code == b.Code {
			return &remoteError{msg: b.Error, sentinel: c.err}
		}
	}
	return &remoteError{msg: b.Error}
}
