package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/plugin"
)

func init() {
	register(command{Name: "status", Usage: "[-c FILE | --url URL] [--json]", Short: "show a running gateway's connectors and queues", Run: runStatus})
}

func runStatus(args []string, std stdio) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file (its status.listen is asked)")
	url := fs.String("url", "", "status URL, e.g. http://127.0.0.1:8025/status (instead of -c)")
	asJSON := fs.Bool("json", false, "print the status document as it is")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw status [-c FILE | --url URL] [--json]\n\nAsks a running gateway's status endpoint (status.listen in its config) for\neach connector's health, process and restarts and the jobs queued per driver.\nExit code 0 when the gateway is healthy now (every connector and driver,\nand the spool), 1 when something is degraded or down now, or the gateway\ncannot be reached. Jobs that failed for good are reported apart: they do\nnot change the exit code (see mediagw jobs list --state failed).")
		fs.PrintDefaults()
	}
	if exit, code := parseFlags(fs, args, std); exit {
		return code
	}
	target, token := *url, ""
	if target == "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(std.err, err)
			return 1
		}
		token = statusToken(cfg)
		target, err = statusURL(cfg.Status.Listen, *cfgPath)
		if err != nil {
			fmt.Fprintln(std.err, err)
			return 1
		}
	} else if cfg, err := config.Load(*cfgPath); err == nil {
		token = statusToken(cfg) // --url with -c: the token still comes from the config
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, st, err := fetchStatus(ctx, target, token)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	if *asJSON {
		std.out.Write(body) //nolint:errcheck // nothing to tell
	} else {
		printStatus(std.out, st)
	}
	if !statusGood(st) {
		return 1
	}
	return 0
}

// statusURL turns status.listen into the URL of the endpoint.
func statusURL(listen, cfgPath string) (string, error) {
	switch {
	case listen == "":
		return "", fmt.Errorf("%s: status.listen is not set, so the gateway serves no status; add\n  status:\n    listen: 127.0.0.1:8025\nand reload it (SIGHUP), or give --url", cfgPath)
	case strings.HasSuffix(listen, ":0"):
		return "", fmt.Errorf("%s: status.listen %s picks a free port at start; take the URL from the gateway's log (msg=\"status endpoint\") and give --url", cfgPath, listen)
	case strings.HasPrefix(listen, ":"):
		listen = "127.0.0.1" + listen
	case strings.HasPrefix(listen, "0.0.0.0:"):
		listen = "127.0.0.1" + strings.TrimPrefix(listen, "0.0.0.0")
	}
	return "http://" + listen + "/status", nil
}

// statusDoc is what GET /status answers (host.Status, read without its locks).
type statusDoc struct {
	Health  string `json:"health"`
	Drivers map[string]struct {
		Health     string    `json:"health"`
		Since      time.Time `json:"since"`
		Message    string    `json:"message"`
		Queued     int       `json:"queued"`
		InProgress int       `json:"in_progress"`
		Retrying   int       `json:"retrying"`
		Failed     int       `json:"failed"`
		OldestAge  float64   `json:"oldest_age"`
		Slots      int       `json:"slots"`
	} `json:"drivers"`
	Spool struct {
		Health      string    `json:"health"`
		WriteErrors int       `json:"write_errors"`
		Quarantined int       `json:"quarantined"`
		Deferrals   int       `json:"deferrals"`
		LastError   string    `json:"last_error"`
		Since       time.Time `json:"since"`
		FileBytes   int64     `json:"file_bytes"`
		LiveBytes   int64     `json:"live_bytes"`
		FreeBytes   int64     `json:"free_bytes"`
	} `json:"spool"`
	Connectors map[string]struct {
		Health    plugin.HealthState `json:"health"`
		Message   string             `json:"message"`
		Pid       int                `json:"pid"`
		Restarts  int                `json:"restarts"`
		LastError string             `json:"last_error"`
		Since     time.Time          `json:"since"`
	} `json:"connectors"`
	Queued   map[string]int `json:"queued"`
	Failed   int            `json:"failed"`
	Gateway  string         `json:"gateway"`
	Gateways []struct {
		Name       string    `json:"name"`
		Started    time.Time `json:"started"`
		Heartbeat  time.Time `json:"heartbeat"`
		Drivers    []string  `json:"drivers"`
		Connectors []string  `json:"connectors"`
		Version    string    `json:"version"`
		Down       bool      `json:"down"`
	} `json:"gateways"`
	Unserved []string `json:"unserved"`
	Reports  map[string]struct {
		Queued      int64 `json:"queued"`
		Sent        int64 `json:"sent"`
		Suppressed  int64 `json:"suppressed"`
		RateLimited int64 `json:"rate_limited"`
		Off         int64 `json:"off"`
		Failed      int64 `json:"failed"`
	} `json:"reports"`
}

func fetchStatus(ctx context.Context, url, token string) ([]byte, statusDoc, error) {
	var st statusDoc
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, st, fmt.Errorf("status: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, st, fmt.Errorf("status: %w (is the gateway running?)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, st, fmt.Errorf("status: %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, st, fmt.Errorf("status: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, st, fmt.Errorf("status: %s: not a status document: %w", url, err)
	}
	return body, st, nil
}

func printStatus(w io.Writer, st statusDoc) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if st.Health != "" {
		fmt.Fprintf(tw, "gateway: %s\n\n", st.Health)
	}
	fmt.Fprintln(tw, "CONNECTOR\tHEALTH\tPID\tRESTARTS\tSINCE\tNOTE")
	for _, name := range config.SortedKeys(st.Connectors) {
		c := st.Connectors[name]
		note := c.Message
		if c.LastError != "" {
			note = strings.TrimSpace(note + " last error: " + c.LastError)
		}
		since := ""
		if !c.Since.IsZero() {
			since = c.Since.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", name, c.Health, c.Pid, c.Restarts, since, note)
	}
	fmt.Fprintln(tw)
	if st.Drivers == nil {
		// a gateway of an older release
		fmt.Fprintln(tw, "DRIVER\tQUEUED")
		for _, name := range config.SortedKeys(st.Queued) {
			fmt.Fprintf(tw, "%s\t%d\n", name, st.Queued[name])
		}
	} else {
		fmt.Fprintln(tw, "DRIVER\tHEALTH\tQUEUED\tACTIVE\tRETRYING\tFAILED\tOLDEST\tNOTE")
		for _, name := range config.SortedKeys(st.Drivers) {
			d := st.Drivers[name]
			oldest := "-"
			if d.Queued+d.Retrying+d.InProgress > 0 {
				oldest = (time.Duration(d.OldestAge) * time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%d\t%d\t%s\t%s\n", name, d.Health, d.Queued, d.InProgress, d.Slots, d.Retrying, d.Failed, oldest, d.Message)
		}
		fmt.Fprintln(tw)
		note := ""
		if st.Spool.Health != "healthy" && st.Spool.LastError != "" {
			note = "last error: " + st.Spool.LastError
		}
		if n := st.Spool.Quarantined; n > 0 {
			note = strings.TrimSpace(fmt.Sprintf("quarantined %d (entries that cannot be decoded; see the log)  %s", n, note))
		}
		size := "" // a spool on PostgreSQL has no file of its own
		if st.Spool.FileBytes > 0 {
			size = fmt.Sprintf("file %s (live %s, free %s)", mib(st.Spool.FileBytes), mib(st.Spool.LiveBytes), mib(st.Spool.FreeBytes))
		}
		fmt.Fprintf(tw, "spool: %s\twrite errors %d\tdeferrals %d\t%s\t%s\n", st.Spool.Health,
			st.Spool.WriteErrors, st.Spool.Deferrals, size, note)
	}
	if len(st.Gateways) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "GATEWAY\tSTATE\tHEARTBEAT\tSTARTED\tDRIVERS\tCONNECTORS\tVERSION")
		for _, g := range st.Gateways {
			name, state := g.Name, "up"
			if name == st.Gateway {
				name += " (this)"
			}
			if g.Down {
				state = "down"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, state, g.Heartbeat.Local().Format(time.DateTime),
				g.Started.Local().Format(time.DateTime), orDash(g.Drivers), orDash(g.Connectors), g.Version)
		}
	}
	if len(st.Unserved) > 0 {
		fmt.Fprintln(tw)
		for _, d := range st.Unserved {
			fmt.Fprintf(tw, "no gateway runs driver %s: %d job(s) wait for one\n", d, st.Queued[d])
		}
	}
	if len(st.Reports) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "REPORTS OF\tMADE\tSENT\tFAILED\tNOT MADE: LOOP RULES\tRATE LIMIT\tCANNOT SEND")
		for _, name := range config.SortedKeys(st.Reports) {
			r := st.Reports[name]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", name, r.Queued, r.Sent, r.Failed, r.Suppressed, r.RateLimited, r.Off)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nfailed for good: %d job(s)", st.Failed)
	if st.Failed > 0 {
		fmt.Fprint(w, " (mediagw jobs list --state failed; not counted in the exit code)")
	}
	fmt.Fprintln(w)
}

func orDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// statusGood: the gateway is healthy now. Failed jobs do not count.
func statusGood(st statusDoc) bool {
	if st.Health != "" {
		return st.Health == "healthy"
	}
	for _, c := range st.Connectors {
		if c.Health != plugin.HealthHealthy {
			return false
		}
	}
	return true
}
