// Command mediagw-connector-maildir is the maildir connector plugin. The
// mediagw host starts it; it is not run by hand.
package main

import (
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/maildir"
)

func main() { plugin.ServeConnector(maildir.New) }
