// An in-memory upstream SCIM 2.0 service for bridge's tests, built on scimmy + scimmy-routers.
//
// Usage: SCIMMY_TOKEN=secret node server.mjs seed.json
//
// seed.json: {"users": [SCIM User objects, each with an "id"], "groups": [SCIM Group objects,
// each with an "id"; members as {"value", "type": "User"|"Group"}]}. The enterprise extension
// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User) is declared on User.
//
// It listens on 127.0.0.1 on a port the OS picks and prints "PORT <n>" on stdout once ready;
// the SCIM endpoints are under /scim/v2 and need "Authorization: Bearer $SCIMMY_TOKEN".
// Writes (POST/PUT/PATCH/DELETE) work against the in-memory maps, so tests can change the
// directory between reads. It exits when stdin closes or on SIGTERM.
import fs from "node:fs";
import crypto from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const seedPath = process.argv[2];
const token = process.env.SCIMMY_TOKEN ?? "";
if (!seedPath || !token) {
    console.error("usage: SCIMMY_TOKEN=... node server.mjs seed.json");
    process.exit(2);
}
const seed = JSON.parse(fs.readFileSync(seedPath, "utf8"));

const stores = {User: new Map(), Group: new Map()};
for (const u of seed.users ?? []) stores.User.set(String(u.id), {...u, id: String(u.id)});
for (const g of seed.groups ?? []) stores.Group.set(String(g.id), {...g, id: String(g.id)});

// Keep insertion order stable so that paging is deterministic.
const handlers = (kind) => ({
    egress: async (resource) => {
        const store = stores[kind];
        if (resource.id) {
            const found = store.get(resource.id);
            if (!found) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
            return found;
        }
        const all = [...store.values()];
        return resource.filter ? resource.filter.match(all) : all;
    },
    ingress: async (resource, instance) => {
        const store = stores[kind];
        const id = resource.id ?? crypto.randomUUID();
        if (resource.id && !store.has(id)) throw new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);
        const now = new Date().toISOString();
        const stored = {...JSON.parse(JSON.stringify(instance)), id, meta: {created: now, lastModified: now}};
        store.set(id, stored);
        return stored;
    },
    degress: async (resource) => {
        if (!stores[kind].delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    },
});

SCIMMY.Config.set({filter: 1000, sort: true, patch: true});
SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false);
SCIMMY.Resources.declare(SCIMMY.Resources.User, handlers("User"));
SCIMMY.Resources.declare(SCIMMY.Resources.Group, handlers("Group"));

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    handler: (request) => {
        if (request.header("Authorization") !== `Bearer ${token}`) throw new Error("Invalid or missing bearer token");
        return "bridge-test";
    },
}));

const server = app.listen(0, "127.0.0.1", () => {
    process.stdout.write(`PORT ${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
