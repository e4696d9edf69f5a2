// Command mediagw-connector-o365 is the "O365 OAUTH" connector plugin.
package main

import (
	"github.com/mediagw/mediagw/plugin"
	"github.com/mediagw/mediagw/plugin/o365"
)

func main() { plugin.ServeConnector(o365.New) }
