package babelforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

const agentTagsPath = "/api/v2/tags/agent"

// ListAgentTags returns the catalogue of agent tags (skills), GET /api/v2/tags/agent. The
// published spec types the items as free-form objects; strings and objects carrying the tag
// under "name", "tag", "value", "key" or "label" are all understood.
func (c *Client) ListAgentTags(ctx context.Context) ([]string, error) {
	var env listEnvelope[json.RawMessage]
	if err := c.call(ctx, http.MethodGet, agentTagsPath, agentTagsPath, nil, nil, &env); err != nil {
		return nil, fmt.Errorf("list agent tags: %w", err)
	}
	tags := make([]string, 0, len(env.Items))
	for _, raw := range env.Items {
		if t := tagName(raw); t != "" {
			tags = append(tags, t)
		}
	}
	return tags, nil
}

func tagName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"name", "tag", "value", "key", "label"} {
		if v, ok := m[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}
