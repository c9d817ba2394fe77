// Lua scripts of RedisStore for the operator's policies (hash P.."policies": policyKey -> PolicyRecord
// JSON). A policy is routing state: each change bumps the version and publishes its event in the script.
// The record's JSON is published as the caller wrote it, spliced into the event rather than decoded and
// encoded again: cjson would turn an empty object into an array and print numbers in its own way.
import { PRELUDE } from './redis-scripts';

const POLICY_PRELUDE = `${PRELUDE}
-- One routing mutation whose changes are JSON text already.
local function publishRaw(changesJson)
  redis.call('SET', P .. 'epoch', NEW_EPOCH, 'NX')
  local epoch = redis.call('GET', P .. 'epoch')
  local version = redis.call('INCR', P .. 'version')
  redis.call('PUBLISH', P .. 'changes', '{"epoch":' .. cjson.encode(epoch) .. ',"version":' .. version .. ',"changes":[' .. changesJson .. ']}')
end
`;

/** ARGV[3] = policy key, ARGV[4] = PolicyRecord JSON. */
export const PUT_POLICY = `${POLICY_PRELUDE}
redis.call('HSET', P .. 'policies', ARGV[3], ARGV[4])
publishRaw('{"kind":"policy.upsert","policy":' .. ARGV[4] .. '}')
return 1
`;

/** ARGV[3] = policy key, ARGV[4] = the updatedAt it must have, or "". Answers 1 when removed. */
export const REMOVE_POLICY = `${PRELUDE}
local json = redis.call('HGET', P .. 'policies', ARGV[3])
if not json then return 0 end
if ARGV[4] ~= '' and cjson.decode(json).updatedAt ~= tonumber(ARGV[4]) then return 0 end
redis.call('HDEL', P .. 'policies', ARGV[3])
publish({ { kind = 'policy.remove', key = ARGV[3] } })
return 1
`;

/** ARGV[3..]: "key", "PolicyRecord JSON" pairs; creates each one whose key is free. Answers the created JSON strings. */
export const RESTORE_POLICIES = `${POLICY_PRELUDE}
local created, changes = {}, {}
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', P .. 'policies', ARGV[i], ARGV[i + 1]) == 1 then
    created[#created + 1] = ARGV[i + 1]
    changes[#changes + 1] = '{"kind":"policy.upsert","policy":' .. ARGV[i + 1] .. '}'
  end
end
if #changes > 0 then publishRaw(table.concat(changes, ',')) end
return created
`;
