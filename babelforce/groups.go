package babelforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Manager API agent group endpoints.
const (
	groupsPath       = "/api/v2/agents/groups"
	groupTmpl        = "/api/v2/agents/groups/{id}"
	groupMembersTmpl = "/api/v2/agents/groups/{groupId}/agents"
	groupMemberTmpl  = "/api/v2/agents/groups/{groupId}/agents/{agentId}"
)

// ListAgentGroups returns every agent group, walking all pages.
func (c *Client) ListAgentGroups(ctx context.Context) ([]AgentGroup, error) {
	groups, err := listAll(ctx, c, groupsPath, groupsPath, nil, 0, groupID)
	if err != nil {
		return nil, fmt.Errorf("list agent groups: %w", err)
	}
	for i := range groups {
		normalizeGroup(&groups[i])
	}
	return groups, nil
}

// GetAgentGroup returns one agent group; errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetAgentGroup(ctx context.Context, id string) (*AgentGroup, error) {
	p, err := pathID("agent group", id)
	if err != nil {
		return nil, err
	}
	return c.groupCall(ctx, http.MethodGet, groupTmpl, groupsPath+"/"+p, nil)
}

// CreateAgentGroup creates g (name is required) and returns it with its id.
func (c *Client) CreateAgentGroup(ctx context.Context, g *AgentGroup) (*AgentGroup, error) {
	if g == nil || g.Name == "" {
		return nil, errors.New("babelforce: create agent group: name is required")
	}
	body := *g
	body.ID = ""
	r, err := newRequest(http.MethodPost, groupsPath, groupsPath, &body)
	if err != nil {
		return nil, err
	}
	var env itemEnvelope[AgentGroup]
	lookup := func(ctx context.Context) (bool, error) { // names are unique, case-insensitively
		gs, err := c.ListAgentGroups(ctx)
		if err != nil {
			return false, err
		}
		for _, f := range gs {
			if strings.EqualFold(f.Name, g.Name) {
				env.Item = f
				return true, nil
			}
		}
		return false, nil
	}
	if err := c.create(ctx, r, &env, lookup); err != nil {
		return nil, fmt.Errorf("create agent group %q: %w", g.Name, err)
	}
	normalizeGroup(&env.Item)
	return &env.Item, nil
}

// UpdateAgentGroup replaces name and tags of agent group id (nil tags clear them).
func (c *Client) UpdateAgentGroup(ctx context.Context, id string, g *AgentGroup) (*AgentGroup, error) {
	p, err := pathID("agent group", id)
	if err != nil {
		return nil, err
	}
	if g == nil || g.Name == "" {
		return nil, errors.New("babelforce: update agent group: name is required")
	}
	// Tags always goes out (an empty list clears them): the update replaces name and tags.
	body := struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{g.Name, g.Tags}
	if body.Tags == nil {
		body.Tags = []string{}
	}
	out, err := c.groupCall(ctx, http.MethodPut, groupTmpl, groupsPath+"/"+p, &body)
	if err != nil {
		return nil, fmt.Errorf("update agent group %s: %w", NormalizeID(id), err)
	}
	return out, nil
}

// DeleteAgentGroup deletes agent group id.
func (c *Client) DeleteAgentGroup(ctx context.Context, id string) error {
	p, err := pathID("agent group", id)
	if err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodDelete, groupTmpl, groupsPath+"/"+p, nil, nil, nil); err != nil {
		return fmt.Errorf("delete agent group %s: %w", NormalizeID(id), err)
	}
	return nil
}

// ListAgentGroupMembers returns the agents of group groupID, walking all pages.
func (c *Client) ListAgentGroupMembers(ctx context.Context, groupID string) ([]Agent, error) {
	p, err := pathID("agent group", groupID)
	if err != nil {
		return nil, err
	}
	agents, err := listAll(ctx, c, groupMembersTmpl, groupsPath+"/"+p+"/agents", nil, 0, agentID)
	if err != nil {
		return nil, fmt.Errorf("list members of agent group %s: %w", NormalizeID(groupID), err)
	}
	for i := range agents {
		normalizeAgent(&agents[i])
	}
	return agents, nil
}

// AddAgentToGroup adds agent agentID to group groupID.
func (c *Client) AddAgentToGroup(ctx context.Context, groupID, agentID string) error {
	gp, err := pathID("agent group", groupID)
	if err != nil {
		return err
	}
	aid := NormalizeID(agentID)
	if aid == "" {
		return errors.New("babelforce: add agent to group: agent id is empty")
	}
	var env messageEnvelope
	if err := c.call(ctx, http.MethodPost, groupMembersTmpl, groupsPath+"/"+gp+"/agents", nil, map[string]string{"id": aid}, &env); err != nil {
		return fmt.Errorf("add agent %s to group %s: %w", aid, NormalizeID(groupID), err)
	}
	return nil
}

// RemoveAgentFromGroup removes agent agentID from group groupID.
func (c *Client) RemoveAgentFromGroup(ctx context.Context, groupID, agentID string) error {
	gp, err := pathID("agent group", groupID)
	if err != nil {
		return err
	}
	ap, err := pathID("agent", agentID)
	if err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodDelete, groupMemberTmpl, groupsPath+"/"+gp+"/agents/"+ap, nil, nil, nil); err != nil {
		return fmt.Errorf("remove agent %s from group %s: %w", NormalizeID(agentID), NormalizeID(groupID), err)
	}
	return nil
}

func (c *Client) groupCall(ctx context.Context, method, tmpl, path string, body any) (*AgentGroup, error) {
	var env itemEnvelope[AgentGroup]
	if err := c.call(ctx, method, tmpl, path, nil, body, &env); err != nil {
		return nil, err
	}
	normalizeGroup(&env.Item)
	return &env.Item, nil
}
