-- Orthanc routing for Pneumothorax Triage: every chest radiograph stored here (Modality CR or
-- DX) goes on to the triage listener by C-STORE, the "triage" entry of DicomModalities
-- (AE TRIAGE). What the triage service sends back (its Secondary Capture, SEG and SR, whose
-- calling AE title is TRIAGE) is stored and not sent again: results never loop back.
-- A copy of an instance Orthanc already holds is not stored again (OverwriteInstances false),
-- but Orthanc (1.10) still calls OnStoredInstance for it: an image the modality sends again is
-- routed again, on purpose (that is how an operator re-sends a study the listener missed). The
-- listener treats a SOP Instance UID it already has as a duplicate.

local TRIAGE_MODALITY = 'triage'  -- the DicomModalities entry
local TRIAGE_AET = 'TRIAGE'       -- the calling AE title of the results (DICOM_AE_TITLE)
local ROUTED_MODALITIES = { CR = true, DX = true }

local function upper(value)
  if value == nil then
    return ''
  end
  return string.upper(tostring(value))
end

local function FromTriage(metadata, origin)
  if origin ~= nil and upper(origin['RemoteAet']) == TRIAGE_AET then
    return true
  end
  return metadata ~= nil and upper(metadata['RemoteAET']) == TRIAGE_AET
end

function OnStoredInstance(instanceId, tags, metadata, origin)
  if not ROUTED_MODALITIES[upper(tags['Modality'])] then
    return
  end
  if FromTriage(metadata, origin) then
    return
  end
  -- An asynchronous job: a triage listener that is down fails the job (see /jobs), and the
  -- instance stays here; send it again from Orthanc Explorer or POST /modalities/triage/store.
  SendToModality(instanceId, TRIAGE_MODALITY)
end
