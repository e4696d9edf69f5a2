// Package statusapi is the gateway's HTTP JSON API on the status listener:
// status, jobs (list, show, retry, purge), a connector's Test, and the
// Prometheus metrics. It has no authentication of its own: the console
// wraps it with its users and roles, and without the console it listens on
// loopback only.
package statusapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/mediagw/mediagw/host"
	"github.com/mediagw/mediagw/host/spool"
)

// TestTimeout bounds a connector's Test run from the API.
var TestTimeout = 2 * time.Minute

// TestResult is a connector's Test as JSON.
type TestResult struct {
	Connector string `json:"connector"`
	Category  string `json:"category"` // ok, invalid_credential, unreachable, permission_denied, mailbox_not_found, error
	Hint      string `json:"hint,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// Handler serves the API of h:
//
//	GET  /status                      host.Status
//	GET  /api/jobs?driver=&state=&limit=  []spool.JobInfo
//	GET  /api/jobs/{id}               spool.JobDetail
//	POST /api/jobs/{id}/retry         a failed job back to the queue
//	POST /api/jobs/{id}/purge         a failed or queued job removed
//	POST /api/connectors/{name}/test  TestResult
//	POST /api/spool/compact           spool.Compaction (writes wait while it copies)
//	GET  /metrics                     Prometheus text format
//
// Errors are {"error": "..."} with 400, 404, 409 or 500.
func Handler(h *host.Host) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := h.Status(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/jobs", func(w http.ResponseWriter, r *http.Request) {
		q := spool.Query{Driver: r.FormValue("driver"), State: r.FormValue("state")}
		if l := r.FormValue("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				replyError(w, http.StatusBadRequest, "limit must be a number ≥ 0")
				return
			}
			q.Limit = n
		}
		switch q.State {
		case "", spool.StateQueued, spool.StateActive, spool.StateRetrying, spool.StateFailed:
		default:
			replyError(w, http.StatusBadRequest, "state must be one of queued, active, retrying, failed")
			return
		}
		jobs, err := h.Jobs(r.Context(), q)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, jobs)
	})
	mux.HandleFunc("GET /api/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := h.Job(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, d)
	})
	mux.HandleFunc("POST /api/jobs/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := h.RetryJob(r.Context(), id); err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, map[string]string{"id": id, "result": "requeued"})
	})
	mux.HandleFunc("POST /api/jobs/{id}/purge", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := h.PurgeJob(r.Context(), id); err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, map[string]string{"id": id, "result": "purged"})
	})
	mux.HandleFunc("POST /api/connectors/{name}/test", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ctx, cancel := context.WithTimeout(r.Context(), TestTimeout)
		defer cancel()
		res, err := h.TestConnector(ctx, name)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, TestResult{Connector: name, Category: string(res.Category), Hint: res.Hint, Detail: res.Detail})
	})
	mux.HandleFunc("POST /api/spool/compact", func(w http.ResponseWriter, r *http.Request) {
		c, err := h.CompactSpool(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, c)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		replyError(w, http.StatusNotFound, "no such API: "+r.Method+" "+r.URL.Path)
	})
	mux.Handle("GET /metrics", h.Metrics())
	return noStore(mux)
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		slog.Debug("statusapi: write reply", "error", err)
	}
}

func replyError(w http.ResponseWriter, code int, msg string) {
	reply(w, code, map[string]string{"error": msg})
}

// fail answers an error with the status its kind calls for.
func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, spool.ErrNotFound), errors.Is(err, host.ErrUnknownConnector):
		code = http.StatusNotFound
	case errors.Is(err, spool.ErrNotFailed), errors.Is(err, spool.ErrActive):
		code = http.StatusConflict
	case errors.Is(err, host.ErrNoCompaction):
		code = http.StatusNotImplemented
	}
	replyError(w, code, err.Error())
}
