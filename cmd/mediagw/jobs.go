package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mediagw/mediagw/host/config"
	"github.com/mediagw/mediagw/host/spool"
)

func init() {
	register(command{Name: "jobs list", Usage: "[-c FILE | --url URL] [--driver D] [--state queued|active|retrying|failed] [--limit N] [--json]",
		Short: "list a running gateway's jobs", Run: runJobsList})
	register(command{Name: "jobs show", Usage: "[-c FILE | --url URL] [--json] JOB", Short: "show a job, its fields, documents and attempts", Run: runJobsShow})
	register(command{Name: "jobs retry", Usage: "[-c FILE | --url URL] JOB", Short: "put a failed job back in its queue (attempts from zero)", Run: runJobsRetry})
	register(command{Name: "jobs purge", Usage: "[-c FILE | --url URL] JOB", Short: "remove a failed or queued job and its documents", Run: runJobsPurge})
}

// jobsClient talks to the gateway's API on its status listener.
type jobsClient struct {
	base    string
	token   string // status.token_file's token, when the config gives one
	timeout time.Duration
	asJSON  bool
}

type jobsFlags struct {
	fs      *flag.FlagSet
	cfgPath *string
	url     *string
	asJSON  *bool
	timeout *time.Duration
}

func newJobsFlags(name, usage string) *jobsFlags {
	fs := flag.NewFlagSet("jobs "+name, flag.ContinueOnError)
	f := &jobsFlags{fs: fs,
		cfgPath: fs.String("c", "mediagw.yaml", "config file (its status.listen is asked)"),
		url:     fs.String("url", "", "the gateway's status URL, e.g. http://127.0.0.1:8025 (instead of -c)"),
		asJSON:  fs.Bool("json", false, "print the API's JSON answer"),
		timeout: fs.Duration("timeout", 30*time.Second, "give up after this long"),
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mediagw jobs %s %s\n\n", name, usage)
		fs.PrintDefaults()
	}
	return f
}

// parse reads flags before and after positional arguments. With --help it
// prints the usage to stdout and the command exits 0.
func (f *jobsFlags) parse(args []string, std stdio) (pos []string, exit bool, code int) {
	for {
		if exit, code := parseFlags(f.fs, args, std); exit {
			return nil, true, code
		}
		args = f.fs.Args()
		if len(args) == 0 {
			return pos, false, 0
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (f *jobsFlags) client() (*jobsClient, error) {
	base, token := *f.url, ""
	if base == "" {
		cfg, err := config.Load(*f.cfgPath)
		if err != nil {
			return nil, err
		}
		token = statusToken(cfg)
		if base, err = statusURL(cfg.Status.Listen, *f.cfgPath); err != nil {
			return nil, err
		}
	} else if cfg, err := config.Load(*f.cfgPath); err == nil {
		token = statusToken(cfg) // --url with -c: the token still comes from the config
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/status")
	return &jobsClient{base: base, token: token, timeout: *f.timeout, asJSON: *f.asJSON}, nil
}

// apiError is an answer of the API other than 200.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// call does one request and decodes the answer into out; it returns the raw body.
func (c *jobsClient) call(method, path string, out any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w (is the gateway running?)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("jobs: %s: %w", c.base+path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return body, &apiError{Status: resp.StatusCode, Msg: fmt.Sprintf("jobs: %s", msg)}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return body, fmt.Errorf("jobs: %s: unexpected answer: %w", c.base+path, err)
		}
	}
	return body, nil
}

func printRaw(w io.Writer, b []byte) {
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	w.Write(b) //nolint:errcheck // nothing to tell
}

func runJobsList(args []string, std stdio) int {
	f := newJobsFlags("list", "[--driver D] [--state queued|active|retrying|failed] [--limit N] [--json]")
	driver := f.fs.String("driver", "", "only the jobs of this driver")
	state := f.fs.String("state", "", "only jobs in this state: queued, active, retrying, failed")
	limit := f.fs.Int("limit", 100, "at most this many jobs (0: all)")
	pos, exit, code := f.parse(args, std)
	if exit {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.err, "jobs list: unexpected argument %q\n", pos[0])
		return 2
	}
	c, err := f.client()
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	q := url.Values{}
	if *driver != "" {
		q.Set("driver", *driver)
	}
	if *state != "" {
		q.Set("state", *state)
	}
	q.Set("limit", fmt.Sprint(*limit))
	var jobs []spool.JobInfo
	body, err := c.call(http.MethodGet, "/api/jobs?"+q.Encode(), &jobs)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	if c.asJSON {
		printRaw(std.out, body)
		return 0
	}
	printJobs(std.out, jobs, time.Now())
	return 0
}

func printJobs(w io.Writer, jobs []spool.JobInfo, now time.Time) {
	if len(jobs) == 0 {
		fmt.Fprintln(w, "no jobs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tDRIVER\tSTATE\tATTEMPTS\tAGE\tWHEN\tREASON")
	for _, j := range jobs {
		when := ""
		switch j.State {
		case spool.StateFailed:
			when = "failed " + j.Finished.Local().Format(time.DateTime)
		case spool.StateRetrying, spool.StateQueued:
			if d := j.Due.Sub(now); d > 0 {
				when = "due in " + d.Round(time.Second).String()
			} else {
				when = "due now"
			}
		}
		reason := j.LastError
		if j.Category != "" {
			reason = j.Category + ": " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Driver, j.State, j.Attempts,
			now.Sub(j.Accepted).Round(time.Second), when, oneLine(reason, 80))
	}
	tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func oneJob(name string, args []string, std stdio) (*jobsClient, string, int) {
	f := newJobsFlags(name, "[-c FILE | --url URL] JOB")
	pos, exit, code := f.parse(args, std)
	if exit {
		return nil, "", code
	}
	if len(pos) != 1 {
		f.fs.Usage()
		return nil, "", 2
	}
	c, err := f.client()
	if err != nil {
		fmt.Fprintln(std.err, err)
		return nil, "", 1
	}
	return c, pos[0], 0
}

func runJobsShow(args []string, std stdio) int {
	c, id, rc := oneJob("show", args, std)
	if c == nil {
		return rc
	}
	var d spool.JobDetail
	body, err := c.call(http.MethodGet, "/api/jobs/"+url.PathEscape(id), &d)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	if c.asJSON {
		printRaw(std.out, body)
		return 0
	}
	printJob(std.out, &d)
	return 0
}

func printJob(w io.Writer, d *spool.JobDetail) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("job", d.ID)
	row("driver", d.Driver)
	row("connector", d.Connector)
	row("source", d.SourceID)
	row("state", d.State)
	row("attempts", fmt.Sprint(d.Attempts))
	row("accepted", d.Accepted.Local().Format(time.DateTime))
	if !d.Due.IsZero() {
		row("due", d.Due.Local().Format(time.DateTime))
	}
	if !d.Finished.IsZero() {
		row("failed", d.Finished.Local().Format(time.DateTime))
	}
	if d.LastError != "" {
		row("last error", strings.TrimPrefix(d.Category+": "+d.LastError, ": "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nfields:")
	keys := make([]string, 0, len(d.Fields))
	for k := range d.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%s\n", k, oneLine(d.Fields[k], 100))
	}
	tw.Flush()
	fmt.Fprintln(w, "\ndocuments:")
	for _, doc := range d.Documents {
		fmt.Fprintf(w, "  %s  %s  %d bytes\n", doc.Name, doc.MediaType, doc.Size)
	}
	if len(d.History) > 0 {
		fmt.Fprintln(w, "\nattempts:")
	}
	for _, a := range d.History {
		line := fmt.Sprintf("  #%d %s %s (%s)", a.N, a.Started.Local().Format(time.DateTime), a.Result, a.Ended.Sub(a.Started).Round(time.Millisecond))
		if a.Reason != "" {
			line += " " + strings.TrimPrefix(a.Category+": "+a.Reason, ": ")
		}
		fmt.Fprintln(w, line)
		for _, l := range strings.Split(strings.TrimRight(a.Log, "\n"), "\n") {
			if l != "" {
				fmt.Fprintln(w, "      "+l)
			}
		}
	}
}

func runJobsRetry(args []string, std stdio) int {
	return jobAction("retry", "requeued: due now, attempts from zero", args, std)
}
func runJobsPurge(args []string, std stdio) int { return jobAction("purge", "purged", args, std) }

func jobAction(action, done string, args []string, std stdio) int {
	c, id, rc := oneJob(action, args, std)
	if c == nil {
		return rc
	}
	body, err := c.call(http.MethodPost, "/api/jobs/"+url.PathEscape(id)+"/"+action, nil)
	if err != nil {
		fmt.Fprintln(std.err, err)
		return 1
	}
	if c.asJSON {
		printRaw(std.out, body)
		return 0
	}
	fmt.Fprintf(std.out, "%s: %s\n", id, done)
	return 0
}
