"""De-identification of DICOM headers on ingest, after DICOM PS3.15 Annex E, the Basic
Application Level Confidentiality Profile (Table E.1-1, "Basic Prof." column).

What the clinician needs is read from the original header *before* this runs and kept in the
access-controlled case record (``CaseImage.metadata``, ``Case.study_metadata``: modality, study
date, view, sex, age, study/series UIDs...). The stored file keeps the pixels and the imaging
attributes the worker needs (rows, columns, photometric interpretation, pixel spacing, LUTs)
and loses identifying attributes:

- X (remove): the attributes in ``REMOVE`` and every private tag, curve data, overlay comments;
- Z (empty):  the type-2 attributes in ``EMPTY`` (patient name and id, study date...);
- U (replace): instance UIDs, mapped to new UIDs under the 2.25 root by a keyed hash, so the
  same study uploaded twice still groups, and references inside the file stay consistent;
- then Patient Identity Removed = YES and De-identification Method (Code Sequence 113100).

Not covered (documented limits): identifying text burned into the pixels, and attributes of
the profile's "C"/"K" options (retain longitudinal dates, device identity...). Controlled by
``DICOM_DEIDENTIFY_ON_STORE`` (on by default).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import uuid

from django.conf import settings

# Table E.1-1 attributes whose basic-profile action is X (or X/Z, X/D, X/Z/D...: we remove).
REMOVE = frozenset("""
AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription AcquisitionTime
ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID AdmittingDate
AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime Allergies Arbitrary
AuthorObserverSequence BranchOfService CommentsOnThePerformedProcedureStep
ConfidentialityConstraintOnPatientDataDescription ContentCreatorIdentificationCodeSequence
ContributionDescription CountryOfResidence CurrentPatientLocation CurveDate CurveTime
CustodialOrganizationSequence DataSetTrailingPadding DerivationDescription DeviceSerialNumber
DeviceUID DischargeDiagnosisDescription DistributionAddress DistributionName
FrameComments GeneratorID HumanPerformerName HumanPerformerOrganization IconImageSequence
IdentifyingComments ImageComments ImagePresentationComments ImagingServiceRequestComments
Impressions InstitutionAddress InstitutionCodeSequence InstitutionName
InstitutionalDepartmentName InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription
InterpretationIDIssuer InterpretationRecorder InterpretationText InterpretationTranscriber
IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID MedicalAlerts
MedicalRecordLocator MilitaryRank ModifiedAttributesSequence ModifyingDeviceID
ModifyingDeviceManufacturer NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults
Occupation OperatorIdentificationSequence OperatorsName OriginalAttributesSequence
OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OtherPatientIDs
OtherPatientIDsSequence OtherPatientNames ParticipantSequence PatientAddress PatientAge
PatientBirthName PatientBirthTime PatientComments PatientInsurancePlanCodeSequence
PatientMotherBirthName PatientPrimaryLanguageCodeSequence
PatientPrimaryLanguageModifierCodeSequence PatientReligiousPreference PatientSexNeutered
PatientSize PatientState PatientTelecomInformation PatientTelephoneNumbers PatientTransportArrangements
PatientWeight PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepEndDate
PerformedProcedureStepEndDateTime PerformedProcedureStepEndTime PerformedProcedureStepID
PerformedProcedureStepStartDate PerformedProcedureStepStartDateTime PerformedProcedureStepStartTime
PerformedStationAETitle PerformedStationGeographicLocationCodeSequence PerformedStationName
PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence
PerformingPhysicianName PersonAddress PersonIdentificationCodeSequence PersonName
PersonTelephoneNumbers PhysicianApprovingInterpretation PhysiciansOfRecord
PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
PlateID PreMedication PregnancyStatus ProtocolName ReasonForStudy ReasonForTheImagingServiceRequest
ReasonForTheRequestedProcedure ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence
ReferencedPatientPhotoSequence ReferencedPatientSequence ReferencedSOPInstanceMACSequence
ReferencedStudySequence ReferringPhysicianAddress ReferringPhysicianIdentificationSequence
ReferringPhysicianTelephoneNumbers RegionOfResidence RequestAttributesSequence
RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription
RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService
ResponsibleOrganization ResponsiblePerson ResponsiblePersonRole ResultsComments
ResultsDistributionListSequence ResultsIDIssuer ScheduledHumanPerformersSequence
ScheduledPatientInstitutionResidence ScheduledPerformingPhysicianIdentificationSequence
ScheduledPerformingPhysicianName ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
ScheduledProcedureStepDescription ScheduledProcedureStepLocation ScheduledProcedureStepStartDate
ScheduledProcedureStepStartTime ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence
ScheduledStationName ScheduledStationNameCodeSequence ScheduledStudyLocation
ScheduledStudyLocationAETitle SeriesDate SeriesDescription SeriesTime ServiceEpisodeDescription
ServiceEpisodeID SmokingStatus SourceImageSequence SpecialNeeds StationName StudyComments
StudyDescription StudyIDIssuer TextComments TextString TopicAuthor TopicKeywords TopicSubject
TopicTitle VerifyingObserverIdentificationCodeSequence VerifyingObserverName
VerifyingObserverSequence VerifyingOrganization VisitComments EthnicGroup
""".split())

# Type-2 attributes the profile empties (Z, Z/D): present but without a value.
EMPTY = frozenset("""
AccessionNumber ContentCreatorName ContentDate ContentTime FillerOrderNumberImagingServiceRequest
PatientBirthDate PatientID PatientName PatientSex PlacerOrderNumberImagingServiceRequest
ReferringPhysicianName StudyDate StudyID StudyTime VerifyingObserverName
""".split())

# UIDs kept as they are: they name classes and syntaxes, not people or instances.
_KEEP_UID_SUFFIXES = ("ClassUID", "TransferSyntaxUID", "ImplementationClassUID",
                      "CodingSchemeUID", "ContextGroupExtensionCreatorUID",
                      "MappingResourceUID", "PrivateInformationCreatorUID")

METHOD = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"


class DeidentificationError(ValueError):
    pass


def new_uid(original: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode() or b"triage", original.encode(),
                      hashlib.sha256).digest()
    return f"2.25.{uuid.UUID(bytes=digest[:16]).int}"


def _is_instance_uid(element) -> bool:
    keyword = element.keyword or ""
    return element.VR == "UI" and not keyword.endswith(_KEEP_UID_SUFFIXES)


def _clean(dataset, element) -> None:
    tag = element.tag
    if tag.is_private or tag.group in range(0x5000, 0x5100, 2) or (
            0x6000 <= tag.group <= 0x60FF and tag.element in (0x3000, 0x4000)):
        del dataset[tag]  # private tags, curves, overlay data and comments: X
    elif element.keyword in REMOVE:
        del dataset[tag]
    elif element.keyword in EMPTY:
        element.value = None if element.VR == "SQ" else ""
    elif _is_instance_uid(element) and element.value:
        if element.VM > 1:
            element.value = [new_uid(str(v)) for v in element.value]
        else:
            element.value = new_uid(str(element.value))


def deidentify_dicom(data: bytes) -> bytes:
    """The DICOM file with its header de-identified; the pixel data are untouched."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        dataset.remove_private_tags()
        dataset.walk(_clean)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in dataset:
            meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        dataset.DeidentificationMethodCodeSequence = Sequence([code])
        out = io.BytesIO()
        dataset.save_as(out, enforce_file_format=False)
    except Exception as exc:  # never store an identified file because de-identification broke
        raise DeidentificationError(f"the DICOM header could not be de-identified ({exc})") from exc
    return out.getvalue()
