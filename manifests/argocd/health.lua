-- Argo CD health of InferFlux resources (InferenceModel, Prompt, Tenant), read from their status as the
-- Kubernetes API conventions put it (the same fields kstatus reads for Flux):
--   status older than metadata.generation  -> Progressing (the operator has not seen the change)
--   Stalled=True                           -> Degraded (a terminal spec error; retrying won't help)
--   Ready=True                             -> Healthy
--   anything else                          -> Progressing (Ready False or Unknown, or no status yet)
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end
local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return (c.reason or "") .. ": " .. c.message
  end
  return c.reason or ""
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready ~= nil then
  hs.message = describe(ready)
end
return hs
