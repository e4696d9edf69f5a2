package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// keepAlive is how often an idle activity stream gets a comment line, so
// proxies keep it open and a dead browser is noticed.
const keepAlive = 20 * time.Second

// events streams activity as server-sent events, each a JSON Event, filtered
// by ?connector= and ?driver=.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if n := s.streams.Add(1); n > int64(s.opts.MaxStreams) {
		s.streams.Add(-1)
		http.Error(w, "console: too many open activity streams", http.StatusServiceUnavailable)
		return
	}
	defer s.streams.Add(-1)
	rc := http.NewResponseController(w)
	// The stream outlives any write timeout the server has.
	_ = rc.SetWriteDeadline(time.Time{})
	conn, drv := r.URL.Query().Get("connector"), r.URL.Query().Get("driver")
	ch, cancel := s.b.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 3000\n: connected\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if (conn != "" && ev.Connector != conn) || (drv != "" && ev.Driver != drv) {
				continue
			}
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "event: activity\ndata: %s\n\n", b); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
