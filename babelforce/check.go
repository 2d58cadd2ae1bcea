package babelforce

import (
	"context"
	"fmt"
)

// CheckAuth reports whether the client can authenticate to babelforce now, for readiness
// probes. With the password grant it obtains (or reuses) the cached token; with a static token
// it makes one cheap authenticated read (the agent tag catalogue), since a static token can
// only be checked by using it.
func (c *Client) CheckAuth(ctx context.Context) error {
	if c.cfg.Token == "" {
		if _, err := c.tokens.get(ctx); err != nil {
			return fmt.Errorf("obtain token: %w", err)
		}
		return nil
	}
	if _, err := c.ListAgentTags(ctx); err != nil {
		return fmt.Errorf("check static token: %w", err)
	}
	return nil
}
