package babelforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Manager API agent endpoints.
const (
	agentsPath = "/api/v2/agents"
	agentTmpl  = "/api/v2/agents/{id}"
)

// AgentFilter narrows ListAgents; zero fields do not filter.
type AgentFilter struct {
	// SourceID is the agent's id in the source directory (query "sourceId").
	SourceID string
	// Source is the source integration (query "source", matching agentSource).
	Source string
	// Q searches name, group name, number, email, sourceId and integration label.
	Q string
	// Enabled filters enabled (true) or disabled (false) agents.
	Enabled *bool
	// PageSize overrides Config.PageSize for this listing.
	PageSize int
}

// AgentUpdate is a partial update of an agent: only non-nil fields are sent, and only those
// change. Tags replaces the whole tag list (an empty slice removes every tag).
type AgentUpdate struct {
	Name        *string   `json:"name,omitempty"`
	Email       *string   `json:"email,omitempty"`
	Number      *string   `json:"number,omitempty"`
	Tags        *[]string `json:"tags,omitempty"`
	SourceID    *string   `json:"sourceId,omitempty"`
	AgentSource *string   `json:"agentSource,omitempty"`
}

// IsZero reports whether u changes nothing.
func (u AgentUpdate) IsZero() bool {
	return u.Name == nil && u.Email == nil && u.Number == nil && u.Tags == nil && u.SourceID == nil && u.AgentSource == nil
}

// BulkResult is the per-agent result of a bulk action.
type BulkResult struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
	Item    *Agent `json:"item,omitempty"`
}

// ListAgents returns every agent matching f, walking all pages (each compacted as it is
// taken, see ListOption).
func (c *Client) ListAgents(ctx context.Context, f AgentFilter, opts ...ListOption) ([]Agent, error) {
	q := url.Values{}
	if f.SourceID != "" {
		q.Set("sourceId", f.SourceID)
	}
	if f.Source != "" {
		q.Set("source", f.Source)
	}
	if f.Q != "" {
		q.Set("q", f.Q)
	}
	if f.Enabled != nil {
		q.Set("enabled", strconv.FormatBool(*f.Enabled))
	}
	agents, err := listAll(ctx, c, agentsPath, agentsPath, q, f.PageSize, agentID, newListOptions(opts)) // normalised (compact)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return agents, nil
}

// GetAgent returns one agent; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetAgent(ctx context.Context, id string) (*Agent, error) {
	p, err := pathID("agent", id)
	if err != nil {
		return nil, err
	}
	return c.agentCall(ctx, http.MethodGet, agentTmpl, agentsPath+"/"+p, nil)
}

// CreateAgent creates a (name is required) and returns the created agent with its id. A
// create that may have been applied although it failed (a lost connection or answer, a 5xx
// other than 503) is sent again only after looking for the agent by sourceId and
// agentSource finds none; an agent without a sourceId cannot be looked for and is not sent
// again.
func (c *Client) CreateAgent(ctx context.Context, a *Agent) (*Agent, error) {
	if a == nil || a.Name == "" {
		return nil, errors.New("babelforce: create agent: name is required")
	}
	body := *a
	body.ID, body.DateCreated, body.LastUpdated = "", "", ""
	r, err := newRequest(http.MethodPost, agentsPath, agentsPath, &body)
	if err != nil {
		return nil, err
	}
	var env itemEnvelope[Agent]
	var lookup func(context.Context) (bool, error)
	if sid := strings.TrimSpace(a.SourceID); sid != "" {
		lookup = func(ctx context.Context) (bool, error) {
			found, err := c.ListAgents(ctx, AgentFilter{SourceID: sid, Source: a.AgentSource})
			if err != nil {
				return false, err
			}
			for _, f := range found {
				if NormalizeID(f.SourceID) == NormalizeID(sid) && f.AgentSource == a.AgentSource {
					env.Item = f
					return true, nil
				}
			}
			return false, nil
		}
	}
	if err := c.create(ctx, r, &env, lookup); err != nil {
		return nil, fmt.Errorf("create agent %q: %w", a.Name, err)
	}
	normalizeAgent(&env.Item)
	return &env.Item, nil
}

// UpdateAgent changes the non-nil fields of u on agent id (PUT with a partial body).
func (c *Client) UpdateAgent(ctx context.Context, id string, u AgentUpdate) (*Agent, error) {
	p, err := pathID("agent", id)
	if err != nil {
		return nil, err
	}
	out, err := c.agentCall(ctx, http.MethodPut, agentTmpl, agentsPath+"/"+p, &u)
	if err != nil {
		return nil, fmt.Errorf("update agent %s: %w", NormalizeID(id), err)
	}
	return out, nil
}

// DeleteAgent deletes agent id.
func (c *Client) DeleteAgent(ctx context.Context, id string) error {
	p, err := pathID("agent", id)
	if err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodDelete, agentTmpl, agentsPath+"/"+p, nil, nil, nil); err != nil {
		return fmt.Errorf("delete agent %s: %w", NormalizeID(id), err)
	}
	return nil
}

// EnableAgent enables agent id (PUT /api/v2/agents/{id}/enable).
func (c *Client) EnableAgent(ctx context.Context, id string) error {
	return c.agentAction(ctx, id, "enable")
}

// DisableAgent disables agent id (PUT /api/v2/agents/{id}/disable).
func (c *Client) DisableAgent(ctx context.Context, id string) error {
	return c.agentAction(ctx, id, "disable")
}

func (c *Client) agentAction(ctx context.Context, id, action string) error {
	p, err := pathID("agent", id)
	if err != nil {
		return err
	}
	var env messageEnvelope
	if err := c.call(ctx, http.MethodPut, agentTmpl+"/"+action, agentsPath+"/"+p+"/"+action, nil, nil, &env); err != nil {
		return fmt.Errorf("%s agent %s: %w", action, NormalizeID(id), err)
	}
	return nil
}

// BulkEnableAgents enables the agents ids in one request and returns the per-agent results.
func (c *Client) BulkEnableAgents(ctx context.Context, ids []string) ([]BulkResult, error) {
	return c.bulkAgents(ctx, "enable", ids)
}

// BulkDisableAgents disables the agents ids in one request and returns the per-agent results.
func (c *Client) BulkDisableAgents(ctx context.Context, ids []string) ([]BulkResult, error) {
	return c.bulkAgents(ctx, "disable", ids)
}

func (c *Client) bulkAgents(ctx context.Context, action string, ids []string) ([]BulkResult, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	norm := make([]string, 0, len(ids))
	for _, id := range ids {
		n := NormalizeID(id)
		if n == "" {
			return nil, fmt.Errorf("babelforce: bulk %s agents: an agent id is empty", action)
		}
		norm = append(norm, n)
	}
	var out struct {
		Bulk    []BulkResult `json:"bulk"`
		Success *bool        `json:"success"`
		Message string       `json:"message"`
	}
	path := agentsPath + "/bulk/" + action
	if err := c.call(ctx, http.MethodPost, path, path, nil, map[string][]string{"ids": norm}, &out); err != nil {
		return nil, fmt.Errorf("bulk %s %d agents: %w", action, len(norm), err)
	}
	for i := range out.Bulk {
		out.Bulk[i].ID = NormalizeID(out.Bulk[i].ID)
		normalizeAgent(out.Bulk[i].Item)
	}
	return out.Bulk, nil
}

// agentCall runs a request answering one agent in an item envelope.
func (c *Client) agentCall(ctx context.Context, method, tmpl, path string, body any) (*Agent, error) {
	var env itemEnvelope[Agent]
	if err := c.call(ctx, method, tmpl, path, nil, body, &env); err != nil {
		return nil, err
	}
	normalizeAgent(&env.Item)
	return &env.Item, nil
}
