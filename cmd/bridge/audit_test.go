package main

import (
	"strings"
	"testing"
)

// TestAuditLoggerIgnoresLevel: with log.level warn, ordinary info lines are dropped but the
// audit records of writes to babelforce are kept.
func TestAuditLoggerIgnoresLevel(t *testing.T) {
	var b strings.Builder
	logger := newLogger(LogConfig{Level: "warn", Format: "json"}, &b)
	logger.Info("ordinary")
	auditLogger(logger).With("trigger", "schedule").Info("babelforce write", "kind", "create_agent")
	out := b.String()
	if strings.Contains(out, "ordinary") {
		t.Errorf("info line written at level warn: %s", out)
	}
	for _, want := range []string{`"msg":"babelforce write"`, `"log":"audit"`, `"trigger":"schedule"`, `"kind":"create_agent"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit record lacks %s: %s", want, out)
		}
	}
}
