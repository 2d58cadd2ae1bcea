package httpx

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether host (a URL's Hostname()) is this machine: "localhost" or a
// loopback IP (127.0.0.0/8, ::1). It is the one rule for where plain http is allowed. Names
// under .localhost are not accepted: a resolver may send them elsewhere.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
