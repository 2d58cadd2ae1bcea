package babelforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Agent Sync external ids. ASSUMPTION (not public): GET /api/v2/agents/{id}/external-ids
// answering a list (in babelforce's list envelope or bare), PUT and DELETE
// /api/v2/agents/{id}/external-ids/{integrationId} with {"externalId": "..."}. Everything that
// depends on that shape is in this file.
const (
	externalIDsTmpl = "/api/v2/agents/{id}/external-ids"
	externalIDTmpl  = "/api/v2/agents/{id}/external-ids/{integrationId}"
)

// externalIDList accepts {"items": [...]} or a bare array.
type externalIDList []ExternalID

func (l *externalIDList) UnmarshalJSON(b []byte) error {
	var arr []ExternalID
	if json.Unmarshal(b, &arr) == nil {
		*l = arr
		return nil
	}
	var env struct {
		Items []ExternalID `json:"items"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return err
	}
	*l = env.Items
	return nil
}

// ListExternalIDs returns agent agentID's external ids, one per integration. ASSUMED API.
func (c *Client) ListExternalIDs(ctx context.Context, agentID string) ([]ExternalID, error) {
	p, err := pathID("agent", agentID)
	if err != nil {
		return nil, err
	}
	var l externalIDList
	if err := c.call(ctx, http.MethodGet, externalIDsTmpl, agentsPath+"/"+p+"/external-ids", nil, nil, &l); err != nil {
		return nil, fmt.Errorf("list external ids of agent %s: %w", NormalizeID(agentID), err)
	}
	return l, nil
}

// SetExternalID sets agent agentID's id in integration integrationID. ASSUMED API.
func (c *Client) SetExternalID(ctx context.Context, agentID, integrationID, externalID string) error {
	p, err := pathID("agent", agentID)
	if err != nil {
		return err
	}
	if integrationID == "" || externalID == "" {
		return errors.New("babelforce: set external id: integration id and external id are required")
	}
	path := agentsPath + "/" + p + "/external-ids/" + url.PathEscape(integrationID)
	var env messageEnvelope
	if err := c.call(ctx, http.MethodPut, externalIDTmpl, path, nil, map[string]string{"externalId": externalID}, &env); err != nil {
		return fmt.Errorf("set external id of agent %s for %s: %w", NormalizeID(agentID), integrationID, err)
	}
	return nil
}

// DeleteExternalID removes agent agentID's id in integration integrationID. ASSUMED API.
func (c *Client) DeleteExternalID(ctx context.Context, agentID, integrationID string) error {
	p, err := pathID("agent", agentID)
	if err != nil {
		return err
	}
	if integrationID == "" {
		return errors.New("babelforce: delete external id: integration id is required")
	}
	path := agentsPath + "/" + p + "/external-ids/" + url.PathEscape(integrationID)
	if err := c.call(ctx, http.MethodDelete, externalIDTmpl, path, nil, nil, nil); err != nil {
		return fmt.Errorf("delete external id of agent %s for %s: %w", NormalizeID(agentID), integrationID, err)
	}
	return nil
}
