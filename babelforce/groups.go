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
	groupMembersTmpl = "/api/v2/agents/groups/{groupId}/agents"
	groupMemberTmpl  = "/api/v2/agents/groups/{groupId}/agents/{agentId}"
)

// ListAgentGroups returns every agent group, walking all pages.
func (c *Client) ListAgentGroups(ctx context.Context) ([]AgentGroup, error) {
	groups, err := listAll(ctx, c, groupsPath, groupsPath, nil, 0, groupID, listOptions{})
	if err != nil {
		return nil, fmt.Errorf("list agent groups: %w", err)
	}
	for i := range groups {
		normalizeGroup(&groups[i])
	}
	return groups, nil
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
