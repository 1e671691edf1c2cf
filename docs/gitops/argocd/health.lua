-- Argo CD health check for every platform.dataverket.io kind (Datacenter, NetworkPool,
-- ServerPool, MachineClass, PlatformPolicy, RecoveryPolicy), read from the kstatus-style status
-- the controllers write: observedGeneration; Ready; Reconciling and Stalled only while true.
-- The rules, in order, are in docs/gitops.md. argocd-cm-patch.yaml inlines this file once per
-- kind; hack/gitops-health.test.ts runs every copy and fails when one differs from this file.
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and package libraries (and
-- os.time/os.date through require("os")): no string library, so no string.* calls and no
-- ("s"):method() calls. hack/health.sh builds a tool that runs it so, in Argo CD v3.6's flow.

-- Ready=False reasons that no retry fixes: the spec has to change. Our controllers always set
-- Stalled next to them; this list only matters for a status written without it.
local FAILURE_REASONS = {
  InvalidSpec = true,
  Overlap = true,
  UnknownKind = true,
  InsufficientCapacity = true,
  Cancelled = true,
  DeleteFailed = true,
}

local FINALIZER = "platform.dataverket.io/in-use"

local function find(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message", or whichever of the two is there.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason == "" then
    return message
  end
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

local hs = {}
local metadata = obj.metadata or {}
local generation = metadata.generation
local status = obj.status
local conditions = {}
if status ~= nil and status.conditions ~= nil then
  conditions = status.conditions
end
local ready = find(conditions, "Ready")
local reconciling = find(conditions, "Reconciling")
local stalled = find(conditions, "Stalled")

local function waiting()
  if generation == nil then
    return "waiting for the controller to observe this object"
  end
  return "waiting for the controller to observe generation " .. tostring(generation)
end

-- Being deleted. Argo CD (v3.6) replaces what a health script says about an object with a
-- deletionTimestamp by Progressing "Pending deletion; blocked by finalizers: …", unless the
-- script sets deletionMessage: then it shows the script's status with that message. So every
-- verdict below sets it, and Argo CD shows what holds the deletion or why it failed.
local function deleting(healthStatus, message)
  hs.status = healthStatus
  hs.message = message
  hs.deletionMessage = message
  return hs
end

if metadata.deletionTimestamp ~= nil then
  for _, c in ipairs(conditions) do
    if c.reason == "InUse" and not (c.type == "Ready" and c.status == "True") then
      local what = c.message or ""
      if what == "" and status.usedBy ~= nil and #status.usedBy > 0 then
        what = "in use by " .. table.concat(status.usedBy, ", ")
      end
      if what == "" then
        what = "still in use"
      end
      return deleting("Progressing", "held by finalizer " .. FINALIZER .. ": " .. what)
    end
  end
  if isTrue(stalled) then
    return deleting("Degraded", "deletion stalled: " .. describe(stalled))
  end
  if isTrue(reconciling) then
    return deleting("Progressing", "being deleted: " .. describe(reconciling))
  end
  return deleting("Progressing", "being deleted")
end

if status == nil then
  hs.status = "Progressing"
  hs.message = waiting()
  return hs
end

local observed = status.observedGeneration
local caughtUp = generation == nil or (observed ~= nil and observed >= generation)

-- A Stalled condition written for the current generation is a verdict on the current spec, even
-- when status.observedGeneration has not moved (a retryable stall such as DependencyMissing does
-- not finish the generation). One left over from an older generation says nothing yet.
if isTrue(stalled) then
  local forThisGeneration = stalled.observedGeneration ~= nil
    and generation ~= nil
    and stalled.observedGeneration >= generation
  if caughtUp or forThisGeneration then
    hs.status = "Degraded"
    hs.message = describe(stalled)
    return hs
  end
end

if not caughtUp then
  hs.status = "Progressing"
  hs.message = waiting()
  if isTrue(reconciling) then
    hs.message = hs.message .. " (" .. describe(reconciling) .. ")"
  end
  return hs
end

if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = reconciling.message or ""
  if hs.message == "" then
    hs.message = describe(reconciling)
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  if hs.message == "" then
    hs.message = "Ready"
  end
  return hs
end

if ready ~= nil and ready.status == "False" then
  if ready.reason ~= nil and FAILURE_REASONS[ready.reason] then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
hs.message = "waiting for the Ready condition"
return hs
