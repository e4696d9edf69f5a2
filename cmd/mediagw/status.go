package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/plugin"
)

func init() {
	register(command{Name: "status", Usage: "[-c FILE | --url URL] [--json]", Short: "show a running gateway's connectors and queues", Run: runStatus})
}

func runStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cfgPath := fs.String("c", "mediagw.yaml", "config file (its status.listen is asked)")
	url := fs.String("url", "", "status URL, e.g. http://127.0.0.1:8025/status (instead of -c)")
	asJSON := fs.Bool("json", false, "print the status document as it is")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: mediagw status [-c FILE | --url URL] [--json]\n\nAsks a running gateway's status endpoint (status.listen in its config) for\neach connector's health, process and restarts and the jobs queued per driver.\nExit code 0 only when every connector is healthy and no job failed for good.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target := *url
	if target == "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		target, err = statusURL(cfg.Status.Listen, *cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, st, err := fetchStatus(ctx, target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *asJSON {
		os.Stdout.Write(body)
	} else {
		printStatus(os.Stdout, st)
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
	Connectors map[string]struct {
		Health    plugin.HealthState `json:"health"`
		Message   string             `json:"message"`
		Pid       int                `json:"pid"`
		Restarts  int                `json:"restarts"`
		LastError string             `json:"last_error"`
		Since     time.Time          `json:"since"`
	} `json:"connectors"`
	Queued map[string]int `json:"queued"`
	Failed int            `json:"failed"`
}

func fetchStatus(ctx context.Context, url string) ([]byte, statusDoc, error) {
	var st statusDoc
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, st, fmt.Errorf("status: %w", err)
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
	fmt.Fprintln(tw, "DRIVER\tQUEUED")
	for _, name := range config.SortedKeys(st.Queued) {
		fmt.Fprintf(tw, "%s\t%d\n", name, st.Queued[name])
	}
	tw.Flush()
	fmt.Fprintf(w, "\nfailed for good: %d job(s)\n", st.Failed)
}

func statusGood(st statusDoc) bool {
	for _, c := range st.Connectors {
		if c.Health != plugin.HealthHealthy {
			return false
		}
	}
	return st.Failed == 0
}
