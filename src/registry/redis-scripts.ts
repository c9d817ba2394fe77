// Lua scripts of RedisStore. Kept as TypeScript strings so they ship inside dist/ with no file lookup.
//
// Conventions shared by the routing scripts (numberOfKeys = 0):
//   ARGV[1] = key prefix, ARGV[2] = a fresh random epoch id that becomes the epoch only if none exists
//   (a Redis that restarted empty thus starts a new history). Per-tool and per-host keys are derived from
//   the prefix inside the scripts, so these scripts target one Redis (standalone or Sentinel), not Cluster.
//
// Keys under the prefix P:
//   P.."epoch"          string   the table's history id
//   P.."version"        string   INCR'd once per routing mutation
//   P.."backends"       hash     "tool/id" -> Backend JSON
//   P.."tool:"..tool    set      ids of the tool's backends
//   P.."leases"         zset     "tool/id" scored by expiresAt
//   P.."assign"         hash     "host:port" -> Assignment JSON
//   P.."host:"..host    zset     ports assigned on host (scored by port): lowest-free-port search
//   P.."assign:tool"    hash     "tool\nhost" -> the tool's lowest assigned port on host
//   P.."url:"..tool.."\n"..url   set   ids of the tool's backends with that url (supersede checks)
//   P.."tokens"         hash     token id -> TokenRecord JSON
//   P.."revoked"        hash     token id -> Revocation JSON (never removed)
//   P.."policies"       hash     policyKey -> PolicyRecord JSON (redis-policy-scripts.ts)
//   P.."lock:"..name    string   lock owner (PX ttl)
//   P.."checkpoint:"..name
//   channel P.."changes"          ChangeEvent JSON
//
// JSON is built with cjson, which prints numbers with 14 significant digits: epoch-millisecond times
// (13 digits) survive exactly; a value above 1e14 would not, and none of ours gets there.

export const PRELUDE = `
local P = ARGV[1]
local NEW_EPOCH = ARGV[2]

-- One routing mutation: exactly one version bump and one published event carrying all its changes.
local function publish(changes)
  redis.call('SET', P .. 'epoch', NEW_EPOCH, 'NX')
  local epoch = redis.call('GET', P .. 'epoch')
  local version = redis.call('INCR', P .. 'version')
  redis.call('PUBLISH', P .. 'changes', cjson.encode({ epoch = epoch, version = version, changes = changes }))
end

-- Newline cannot occur in a validated tool name, so these compound keys and fields are unambiguous.
local function urlKey(tool, url)
  return P .. 'url:' .. tool .. '\\n' .. url
end

local function toolHostField(tool, host)
  return tool .. '\\n' .. host
end

local function dropBackend(tool, id)
  local key = tool .. '/' .. id
  local json = redis.call('HGET', P .. 'backends', key)
  if not json then return false end
  redis.call('HDEL', P .. 'backends', key)
  redis.call('SREM', P .. 'tool:' .. tool, id)
  redis.call('SREM', urlKey(tool, cjson.decode(json).url), id)
  redis.call('ZREM', P .. 'leases', key)
  return true
end

local function addAssignment(tool, host, port, now)
  local assignment = { tool = tool, host = host, port = port, createdAt = now }
  redis.call('HSET', P .. 'assign', host .. ':' .. port, cjson.encode(assignment))
  redis.call('ZADD', P .. 'host:' .. host, port, port)
  local field = toolHostField(tool, host)
  local indexed = redis.call('HGET', P .. 'assign:tool', field)
  if not indexed or tonumber(indexed) > port then
    redis.call('HSET', P .. 'assign:tool', field, port)
  end
  return assignment
end

-- host, then each other address of a space-separated list, each once.
local function hostsWith(host, alsoHosts)
  local hosts, seen = { host }, { [host] = true }
  for h in string.gmatch(alsoHosts, '%S+') do
    if not seen[h] then
      seen[h] = true
      hosts[#hosts + 1] = h
    end
  end
  return hosts
end

-- For each candidate of ARGV[3..] (triples tool, id, expiresAt) whose lease still has the expiresAt it was
-- read with (no heartbeat renewed it since): fn(n, tool, id, key), n its 1-based index.
local function eachUnrenewed(fn)
  local n = 0
  for i = 3, #ARGV, 3 do
    n = n + 1
    local tool, id, expiresAt = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local key = tool .. '/' .. id
    local score = redis.call('ZSCORE', P .. 'leases', key)
    if score and tonumber(score) == expiresAt then fn(n, tool, id, key) end
  end
end

-- A backend's ttl as a string: Lua numbers in a reply would be truncated to integers.
local function ttlOf(key)
  local json = redis.call('HGET', P .. 'backends', key)
  if not json then return '0' end
  return tostring(cjson.decode(json).ttl)
end
`;

/**
 * ARGV[3..]: tool, id, url, host, port, ttl, source, now, expiresAt, instance ('' for none; a valid one is
 * never empty), restarts ('' for none), alsoHosts (space-separated, '' for none), assignedOnly ('1' or
 * ''), prefix ('' for none)[, clientVersion]. Answers UpsertBackendResult JSON.
 */
export const UPSERT_BACKEND = `${PRELUDE}
local tool, id, url, host = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local port = tonumber(ARGV[7])
local ttl = tonumber(ARGV[8])
local source = ARGV[9]
local now = tonumber(ARGV[10])
local expiresAt = tonumber(ARGV[11])
local instance = ARGV[12]
if instance == '' then instance = nil end
local restarts = tonumber(ARGV[13])
local assignedOnly = ARGV[15] == '1'
local prefix = ARGV[16]
if prefix == '' then prefix = nil end
local clientVersion = ARGV[17]

-- Every address the URL's host stands for: another tool's assignment on any of them is a conflict.
local unheld = {}
for _, h in ipairs(hostsWith(host, ARGV[14])) do
  local json = redis.call('HGET', P .. 'assign', h .. ':' .. port)
  if json then
    local holder = cjson.decode(json).tool
    if holder ~= tool then
      return cjson.encode({ ok = false, reason = 'port_conflict', holder = holder })
    end
  else
    unheld[#unheld + 1] = h
  end
end
if assignedOnly and #unheld > 0 then
  return cjson.encode({ ok = false, reason = 'not_assigned' })
end

local key = tool .. '/' .. id
local prevJson = redis.call('HGET', P .. 'backends', key)
local prev = prevJson and cjson.decode(prevJson) or nil
local routingChanged = (not prev) or prev.url ~= url or prev.source ~= source or prev.prefix ~= prefix
local changes = {}

-- A discovery may take the place of a registration only once that registration's lease has lapsed
-- (expiresAt <= now, as the expirer decides): then it is a new backend, not a renewal.
local renewal = prev ~= nil
if source == 'discovered' and prev and prev.source == 'registered' then
  if prev.expiresAt > now then
    return cjson.encode({ ok = false, reason = 'registered_exists' })
  end
  renewal = false
end
-- Another instance's heartbeat is another run taking the lease over: a new registration too.
if prev and prev.instance ~= instance then renewal = false end

-- A renewal (same url and source) needs no scan: the create or change that produced it already settled
-- registered-versus-discovered for this url, and every later create or change settles it again.
if routingChanged then
  local ids = redis.call('SMEMBERS', urlKey(tool, url))
  local replaced = {}
  for _, otherId in ipairs(ids) do
    if otherId ~= id then
      local otherJson = redis.call('HGET', P .. 'backends', tool .. '/' .. otherId)
      if otherJson then
        local other = cjson.decode(otherJson)
        if other.url == url then
          if source == 'discovered' and other.source == 'registered' then
            if other.expiresAt > now then
              return cjson.encode({ ok = false, reason = 'registered_exists' })
            end
            replaced[#replaced + 1] = otherId
          end
          if source == 'registered' and other.source == 'discovered' then
            replaced[#replaced + 1] = otherId
          end
        end
      end
    end
  end
  for _, otherId in ipairs(replaced) do
    dropBackend(tool, otherId)
    changes[#changes + 1] = { kind = 'backend.remove', tool = tool, id = otherId, reason = 'replaced' }
  end
end

local assignmentCreated = false
for _, h in ipairs(unheld) do
  assignmentCreated = true
  changes[#changes + 1] = { kind = 'assignment.upsert', assignment = addAssignment(tool, h, port, now) }
end

local backend = {
  tool = tool, id = id, url = url, source = source,
  registeredAt = renewal and prev.registeredAt or now,
  lastHeartbeat = now, expiresAt = expiresAt, ttl = ttl,
  clientVersion = clientVersion, instance = instance, restarts = restarts, prefix = prefix,
}
redis.call('HSET', P .. 'backends', key, cjson.encode(backend))
redis.call('SADD', P .. 'tool:' .. tool, id)
if prev and prev.url ~= url then redis.call('SREM', urlKey(tool, prev.url), id) end
redis.call('SADD', urlKey(tool, url), id)
redis.call('ZADD', P .. 'leases', expiresAt, key)

-- A renewal that ends a hold (MARK_HELD) tells proxies the backend is live again.
if routingChanged or (prev and prev.held) then
  changes[#changes + 1] = { kind = 'backend.upsert', backend = backend }
end
if #changes > 0 then publish(changes) end

return cjson.encode({ ok = true, backend = backend, created = not renewal, assignmentCreated = assignmentCreated })
`;

/**
 * ARGV[3..]: tool, id[, instance]. Answers 1 when removed, 0 when there was no such backend, -1 when an
 * instance was given and the stored backend is held by another one (or none): compare-and-delete, so a
 * heartbeat of the new owner cannot slip in between the check and the removal.
 */
export const REMOVE_BACKEND = `${PRELUDE}
local tool, id, instance = ARGV[3], ARGV[4], ARGV[5]
if instance then
  local json = redis.call('HGET', P .. 'backends', tool .. '/' .. id)
  if not json then return 0 end
  if cjson.decode(json).instance ~= instance then return -1 end
end
if not dropBackend(tool, id) then return 0 end
publish({ { kind = 'backend.remove', tool = tool, id = id, reason = 'deregistered' } })
return 1
`;

/**
 * ARGV[3..]: triples tool, id, expiresAt. Compare-and-delete: a candidate whose lease score moved (a
 * heartbeat renewed it) stays. Answers pairs: 1-based index of a removed candidate, its stored ttl.
 */
export const EXPIRE_LEASES = `${PRELUDE}
local removed = {}
local changes = {}
eachUnrenewed(function(n, tool, id, key)
  removed[#removed + 1] = n
  removed[#removed + 1] = ttlOf(key)
  dropBackend(tool, id)
  changes[#changes + 1] = { kind = 'backend.remove', tool = tool, id = id, reason = 'expired' }
end)
if #changes > 0 then publish(changes) end
return removed
`;

/**
 * ARGV[3..]: triples tool, id, expiresAt. Marks each backend whose lease score still equals expiresAt (no
 * renewal since it was read) and that is not held yet: held = true in its record, one event for all.
 * Answers pairs: 1-based index of a marked candidate, its stored ttl.
 */
export const MARK_HELD = `${PRELUDE}
local marked = {}
local changes = {}
eachUnrenewed(function(n, tool, id, key)
  local backend = cjson.decode(redis.call('HGET', P .. 'backends', key))
  if not backend.held then
    backend.held = true
    redis.call('HSET', P .. 'backends', key, cjson.encode(backend))
    marked[#marked + 1] = n
    marked[#marked + 1] = tostring(backend.ttl)
    changes[#changes + 1] = { kind = 'backend.upsert', backend = backend }
  end
end)
if #changes > 0 then publish(changes) end
return marked
`;

/**
 * ARGV[1] = prefix, ARGV[2] = now, ARGV[3] = limit. Leases with expiresAt <= now, oldest first, as
 * triples "tool/id", expiresAt, ttl (strings), read atomically with the backends they belong to.
 */
export const EXPIRED_LEASES = `
local P = ARGV[1]
local flat = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
local out = {}
for i = 1, #flat, 2 do
  local json = redis.call('HGET', P .. 'backends', flat[i])
  out[#out + 1] = flat[i]
  out[#out + 1] = flat[i + 1]
  out[#out + 1] = json and tostring(cjson.decode(json).ttl) or '0'
end
return out
`;

/**
 * ARGV[3..]: tool, host, min, max, now, prefer ('' for none), alsoHosts (the other addresses of a host
 * name, space-separated, '' for none), then the excluded ports (none or more). Answers AllocatePortResult JSON.
 */
export const ALLOCATE_PORT = `${PRELUDE}
local tool, host = ARGV[3], ARGV[4]
local min, max, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local prefer = tonumber(ARGV[8])
local also = hostsWith(host, ARGV[9])
table.remove(also, 1)
local FIRST_EXCLUDED = 10

-- On the name's other addresses the port may be free or the tool's own already.
local function usableOnAlso(port)
  for _, h in ipairs(also) do
    local json = redis.call('HGET', P .. 'assign', h .. ':' .. port)
    if json and cjson.decode(json).tool ~= tool then return false end
  end
  return true
end

-- Assigns port to the tool on each other address where nothing holds it; one event with changes.
local function assignOnAlso(port, changes)
  for _, h in ipairs(also) do
    if redis.call('HEXISTS', P .. 'assign', h .. ':' .. port) == 0 then
      changes[#changes + 1] = { kind = 'assignment.upsert', assignment = addAssignment(tool, h, port, now) }
    end
  end
  if #changes > 0 then publish(changes) end
end

local indexed = redis.call('HGET', P .. 'assign:tool', toolHostField(tool, host))
if indexed then
  local existing = redis.call('HGET', P .. 'assign', host .. ':' .. indexed)
  if existing and usableOnAlso(indexed) then
    assignOnAlso(tonumber(indexed), {})
    return '{"ok":true,"created":false,"assignment":' .. existing .. '}'
  end
  if existing then
    -- Another tool holds the lowest one on an other address: the tool's next own port that is usable.
    for _, p in ipairs(redis.call('ZRANGE', P .. 'host:' .. host, 0, -1)) do
      local json = redis.call('HGET', P .. 'assign', host .. ':' .. p)
      if json and cjson.decode(json).tool == tool and usableOnAlso(p) then
        assignOnAlso(tonumber(p), {})
        return '{"ok":true,"created":false,"assignment":' .. json .. '}'
      end
    end
  end
end

local candidate = min
if prefer and prefer >= min and prefer <= max and redis.call('HEXISTS', P .. 'assign', host .. ':' .. prefer) == 0 and usableOnAlso(prefer) then
  candidate = prefer
elseif #ARGV >= FIRST_EXCLUDED or #also > 0 then
  -- Ports of the previous table's tools are out of bounds as well as the assigned ones, and so are ports
  -- another tool holds on one of the name's other addresses.
  local blocked = {}
  for i = FIRST_EXCLUDED, #ARGV do blocked[tonumber(ARGV[i])] = true end
  for _, p in ipairs(redis.call('ZRANGEBYSCORE', P .. 'host:' .. host, min, max)) do blocked[tonumber(p)] = true end
  for _, h in ipairs(also) do
    for _, p in ipairs(redis.call('ZRANGEBYSCORE', P .. 'host:' .. h, min, max)) do
      local json = redis.call('HGET', P .. 'assign', h .. ':' .. p)
      if json and cjson.decode(json).tool ~= tool then blocked[tonumber(p)] = true end
    end
  end
  while candidate <= max and blocked[candidate] do candidate = candidate + 1 end
else
  local taken = redis.call('ZRANGEBYSCORE', P .. 'host:' .. host, min, max)
  for _, p in ipairs(taken) do
    local n = tonumber(p)
    if n == candidate then
      candidate = candidate + 1
    elseif n > candidate then
      break
    end
  end
end
if candidate > max then
  return cjson.encode({ ok = false, reason = 'range_exhausted' })
end

local assignment = addAssignment(tool, host, candidate, now)
assignOnAlso(candidate, { { kind = 'assignment.upsert', assignment = assignment } })
return cjson.encode({ ok = true, assignment = assignment, created = true })
`;

/** ARGV[3..]: host, port. Answers the released Assignment JSON, or nil. */
export const RELEASE_PORT = `${PRELUDE}
local host, port = ARGV[3], tonumber(ARGV[4])
local json = redis.call('HGET', P .. 'assign', host .. ':' .. port)
if not json then return false end
local tool = cjson.decode(json).tool
redis.call('HDEL', P .. 'assign', host .. ':' .. port)
redis.call('ZREM', P .. 'host:' .. host, port)

-- Keep the tool-on-host index pointing at the tool's lowest remaining port there (release is rare, so
-- walking the host's ports is affordable).
local field = toolHostField(tool, host)
local indexed = redis.call('HGET', P .. 'assign:tool', field)
if indexed and tonumber(indexed) == port then
  local replacement = nil
  for _, p in ipairs(redis.call('ZRANGE', P .. 'host:' .. host, 0, -1)) do
    local other = redis.call('HGET', P .. 'assign', host .. ':' .. p)
    if other and cjson.decode(other).tool == tool then
      replacement = p
      break
    end
  end
  if replacement then
    redis.call('HSET', P .. 'assign:tool', field, replacement)
  else
    redis.call('HDEL', P .. 'assign:tool', field)
  end
end

publish({ { kind = 'assignment.remove', host = host, port = port, tool = tool } })
return json
`;

/**
 * ARGV[3..]: Assignment JSON strings. Creates each one whose host:port is free (a write since the store
 * lost its state wins); one version and one event for all. Answers the created Assignment JSON strings.
 */
export const RESTORE_ASSIGNMENTS = `${PRELUDE}
local created, changes = {}, {}
for i = 3, #ARGV do
  local a = cjson.decode(ARGV[i])
  local port = tonumber(a.port)
  if redis.call('HEXISTS', P .. 'assign', a.host .. ':' .. port) == 0 then
    local assignment = addAssignment(a.tool, a.host, port, tonumber(a.createdAt))
    created[#created + 1] = cjson.encode(assignment)
    changes[#changes + 1] = { kind = 'assignment.upsert', assignment = assignment }
  end
end
if #changes > 0 then publish(changes) end
return created
`;

/**
 * KEYS[1] = tokens hash, KEYS[2] = revocations hash; ARGV[1] = number of revocations, then that many
 * "id", "Revocation JSON" pairs, then "id", "TokenRecord JSON" pairs. A token comes back only when its id is
 * neither stored nor revoked.
 */
export const RESTORE_CREDENTIALS = `
local n = tonumber(ARGV[1])
local i = 2
for _ = 1, n do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
return 1
`;

/** ARGV[1] = prefix, ARGV[2] = tool. Answers Backend JSON strings of the tool, read atomically. */
export const GET_BACKENDS = `
local P, tool = ARGV[1], ARGV[2]
local ids = redis.call('SMEMBERS', P .. 'tool:' .. tool)
local out = {}
for _, id in ipairs(ids) do
  local json = redis.call('HGET', P .. 'backends', tool .. '/' .. id)
  if json then out[#out + 1] = json end
end
return out
`;

/** KEYS[1] = tokens hash; ARGV: tool, id. Answers 1 when revoked. */
export const REVOKE_TOKEN = `
local json = redis.call('HGET', KEYS[1], ARGV[2])
if not json then return 0 end
if cjson.decode(json).tool ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1
`;

/** KEYS[1] = lock key; ARGV: owner, ttlMs. Takes a free lock or extends one `owner` holds. */
export const ACQUIRE_LOCK = `
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS[1] = lock key; ARGV: owner. Deletes the lock only when `owner` holds it. */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;
