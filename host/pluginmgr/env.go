package pluginmgr

import (
	"encoding/json"
	"strings"
)

// baseEnv names the host variables every plugin gets: what a program needs
// to find programs, files, time zones, certificates and proxies. Everything
// else of the host's environment (its secrets above all) stays with the
// host; go-plugin adds its own variables.
var baseEnv = map[string]bool{
	"PATH": true, "HOME": true, "TZ": true, "LANG": true, "TMPDIR": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true,
	"HTTPS_PROXY": true, "HTTP_PROXY": true, "NO_PROXY": true,
	"https_proxy": true, "http_proxy": true, "no_proxy": true,
}

// pluginEnv is the environment a plugin starts with: the host's variables
// named by baseEnv or LC_*, and those its settings name as "env:NAME".
func pluginEnv(configJSON []byte, environ []string) []string {
	named := envRefs(configJSON)
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if ok && (baseEnv[k] || strings.HasPrefix(k, "LC_") || named[k]) {
			out = append(out, kv)
		}
	}
	return out
}

// envRefs returns the variable names that string values of the settings
// refer to as "env:NAME" (secret.Resolve reads them in the plugin).
func envRefs(configJSON []byte) map[string]bool {
	var v any
	if json.Unmarshal(configJSON, &v) != nil {
		return nil
	}
	names := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if name, ok := strings.CutPrefix(v, "env:"); ok && name != "" {
				names[name] = true
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return names
}
