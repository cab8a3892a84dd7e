"""De-identification of DICOM files before Radio stores anything of them.

Table-driven, after DICOM PS3.15 Annex E, Table E.1-1, *Basic Application Level
Confidentiality Profile*, with one option: the *Retain Institution Identity Option* (the
institution name is kept: it is the image's source for per-site evaluation). :data:`ACTIONS`
maps each attribute of the table (by keyword) to its action:

* ``X`` remove; ``Z`` replace by an empty value; ``D`` replace by a dummy value of its VR;
  ``U`` replace the UID by a new one, the same for the same UID within the file; ``K`` keep.
* Where the table offers a choice (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) Radio
  takes the first, the strictest: Radio's stored copy is for its own viewer and datasets,
  and needs no more than the image module to be conformant.

Beyond the table, stricter than the profile (no Retain Longitudinal Temporal, Retain
Patient Characteristics or Retain Device Identity option is claimed):

* every private tag is removed, and every public tag unknown to the data dictionary;
* overlays and curves (groups 0x50xx and 0x60xx), which can carry drawn text, are removed;
* any other person name (PN) is emptied, any other date or time (DA, DT, TM) and free text
  (LT, ST, UT) removed, any other UID replaced, in nested sequences too;
* the file meta information loses its source, sending and receiving AE titles and private
  information; its instance UID follows the replaced SOP Instance UID;
* the 128-byte preamble is zeroed (:func:`deidentify` sets it; it can carry anything, TIFF
  headers included) and trailing padding, a table entry, is removed;
* ``PatientIdentityRemoved`` is set to ``YES`` and ``DeidentificationMethod`` says how.

Kept: the image and what is needed to display it, modality, view, body part, manufacturer
and model, institution name. An image whose ``BurnedInAnnotation`` is ``YES`` is refused
(its pixels may show the patient's name), see ``app.intake.dicom``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: see app/intake/dicom.py
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

METHOD = ("Radio: PS3.15 Annex E Basic Profile (table E.1-1), Retain Institution Identity "
          "Option; private, unknown, overlay and curve tags removed")


def _table(action: str, keywords: str) -> dict[str, str]:
    return dict.fromkeys(keywords.split(), action)


# PS3.15 Table E.1-1, Basic Profile column, by keyword (the action before any option).
ACTIONS: dict[str, str] = {
    **_table("X", """
        AcquisitionComments AcquisitionContextSequence AcquisitionProtocolDescription
        ActualHumanPerformersSequence AdditionalPatientHistory AddressTrial AdmissionID
        AdmittingDate AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription
        AdmittingTime AffectedSOPInstanceUID Allergies Arbitrary AuthorObserverSequence
        BranchOfService CassetteID CommentsOnThePerformedProcedureStep
        ConfidentialityConstraintOnPatientDataDescription
        ContentCreatorIdentificationCodeSequence ContributionDescription CountryOfResidence
        CurrentPatientLocation CurveDate CurveTime CustodialOrganizationSequence
        DataSetTrailingPadding DateOfLastCalibration DerivationDescription
        DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress
        DistributionName EncapsulatedDocument EthnicGroup FillerOrderNumberImagingServiceRequest
        FrameComments GantryID GeneratorID HumanPerformerName HumanPerformerOrganization
        IconImageSequence IdentifyingComments ImageComments ImagePresentationComments
        ImagingServiceRequestComments Impressions InstitutionAddress
        InstitutionalDepartmentName InsurancePlanIdentification
        IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence
        InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer
        InterpretationRecorder InterpretationText InterpretationTranscriber
        IssuerOfAdmissionID IssuerOfAdmissionIDSequence IssuerOfPatientID
        IssuerOfServiceEpisodeID MedicalAlerts MedicalRecordLocator MilitaryRank
        ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID
        NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults Occupation
        OperatorIdentificationSequence OrderCallbackPhoneNumber OrderEnteredBy
        OrderEntererLocation OriginalAttributesSequence OtherPatientIDs
        OtherPatientIDsSequence OtherPatientNames OverlayDate OverlayTime
        ParticipantSequence PatientAddress PatientAge PatientBirthName PatientBirthTime
        PatientComments PatientInstitutionResidence PatientInsurancePlanCodeSequence
        PatientMotherBirthName PatientPrimaryLanguageCodeSequence PatientReligiousPreference
        PatientSize PatientState PatientTelecomInformation PatientTelephoneNumbers
        PatientTransportArrangements PatientWeight PerformedLocation
        PerformedProcedureStepDescription PerformedProcedureStepEndDate
        PerformedProcedureStepEndTime PerformedProcedureStepID
        PerformedProcedureStepStartDate PerformedProcedureStepStartTime
        PerformedStationAETitle PerformedStationGeographicLocationCodeSequence
        PerformedStationName PerformedStationNameCodeSequence
        PerformingPhysicianIdentificationSequence PerformingPhysicianName PersonAddress
        PersonTelephoneNumbers PhysicianApprovingInterpretation PhysiciansOfRecord
        PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
        PlacerOrderNumberImagingServiceRequest PlateID PreMedication PregnancyStatus
        ReasonForStudy ReasonForTheImagingServiceRequest ReasonForTheRequestedProcedure
        ReferencedPatientAliasSequence ReferencedPatientPhotoSequence
        ReferencedPatientSequence ReferringPhysicianAddress
        ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers
        RegionOfResidence RequestAttributesSequence RequestedContrastAgent
        RequestedProcedureComments RequestedProcedureID RequestedProcedureLocation
        RequestingPhysician RequestingService ResponsibleOrganization ResponsiblePerson
        ResultsComments ResultsDistributionListSequence ResultsIDIssuer
        ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
        ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
        ScheduledProcedureStepDescription ScheduledProcedureStepEndDate
        ScheduledProcedureStepID ScheduledProcedureStepLocation
        ScheduledProcedureStepStartDate ScheduledStationAETitle
        ScheduledStationGeographicLocationCodeSequence ScheduledStationName
        ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle
        SeriesDescription ServiceEpisodeDescription ServiceEpisodeID SmokingStatus
        SpecialNeeds StudyComments StudyDescription StudyIDIssuer TextComments TextString
        TopicAuthor TopicKeywords TopicSubject TopicTitle VerifyingOrganization VisitComments
    """),
    **_table("Z", """
        AccessionNumber ContentCreatorName PatientBirthDate PatientID PatientName PatientSex
        ReferringPhysicianName StudyDate StudyID StudyTime
        VerifyingObserverIdentificationCodeSequence ClinicalTrialSiteID ClinicalTrialSiteName
        ClinicalTrialSubjectID ClinicalTrialTimePointID
    """),
    **_table("D", """
        GraphicAnnotationSequence PersonIdentificationCodeSequence PersonName
        VerifyingObserverName VerifyingObserverSequence ClinicalTrialProtocolID
        ClinicalTrialSponsorName ClinicalTrialSubjectReadingID DetectorID
    """),
    **_table("U", """
        StudyInstanceUID SeriesInstanceUID SOPInstanceUID FrameOfReferenceUID
        SynchronizationFrameOfReferenceUID ReferencedSOPInstanceUID
        ReferencedFrameOfReferenceUID DeviceUID InstanceCreatorUID IrradiationEventUID
        StorageMediaFileSetUID TransactionUID ConcatenationUID DimensionOrganizationUID
        TargetUID MediaStorageSOPInstanceUID
    """),
    **_table("X/Z", """
        AcquisitionDate AcquisitionTime PatientSexNeutered ReferencedStudySequence
        RequestedProcedureDescription ReviewerName
    """),
    **_table("X/D", """
        AcquisitionDateTime AcquisitionDeviceProcessingDescription InstanceCreationDate
        ProtocolName SeriesDate SeriesTime
    """),
    **_table("Z/D", "ContentDate ContentTime"),
    **_table("X/Z/D", """
        DeviceSerialNumber InstanceCreationTime InstitutionCodeSequence InstitutionName
        OperatorsName ReferencedPerformedProcedureStepSequence StationName
    """),
    **_table("X/Z/U*", "ReferencedImageSequence SourceImageSequence"),
}
# The Retain Institution Identity Option (PS3.15 E.3.1x): the source of the image.
OPTIONS: dict[str, str] = {"InstitutionName": "K"}
# File meta information (group 0002) that names the sender.
META_REMOVE = frozenset({"SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                         "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
                         "PrivateInformation"})
# UIDs naming a kind of object, not an instance: they identify nobody.
KEEP_UIDS = frozenset({
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "CodingSchemeUID", "ContextGroupExtensionCreatorUID",
    "ReferencedSOPClassUIDInFile", "ReferencedTransferSyntaxUIDInFile",
})
_DATES, _FREE_TEXT = ("DA", "TM", "DT"), ("LT", "ST", "UT")
_DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMOUS",
          "AS": "000Y", "IS": "0", "DS": "0", "CS": "ANONYMIZED"}


def action(keyword: str) -> str:
    """The single action Radio applies to an attribute of the table (X, Z, D, U or K); ""
    for an attribute the table does not list."""
    chosen = OPTIONS.get(keyword) or ACTIONS.get(keyword, "")
    return chosen.split("/")[0].rstrip("*")


def _dummy(elem: DataElement) -> object:
    if elem.VR == "SQ":
        return []
    if elem.VR in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 0
    if elem.VR in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b""
    return _DUMMY.get(elem.VR, "ANONYMIZED")


def _new_uid(value: object, uids: dict[str, str]) -> object:
    from pydicom.multival import MultiValue
    from pydicom.uid import generate_uid

    if isinstance(value, (list, MultiValue)):
        return [uids.setdefault(str(v), generate_uid()) for v in value]
    return uids.setdefault(str(value), generate_uid()) if value else value


def _apply(ds: Dataset, elem: DataElement, todo: str, uids: dict[str, str]) -> None:
    if todo == "X":
        del ds[elem.tag]
    elif todo == "Z":
        elem.value = [] if elem.VR == "SQ" else (b"" if elem.VR in ("OB", "OW", "UN")
                                                 else None)
    elif todo == "D":
        elem.value = _dummy(elem)
    elif todo == "U" and elem.VR == "UI":
        elem.value = _new_uid(elem.value, uids)


def _clean(ds: Dataset, uids: dict[str, str]) -> None:
    from pydicom.datadict import dictionary_has_tag

    for elem in list(ds):
        tag = elem.tag
        if tag == 0x7FE00010:  # the pixel data
            continue
        group = tag.group
        if (tag.is_private or not dictionary_has_tag(tag) or 0x5000 <= group <= 0x50FF
                or 0x6000 <= group <= 0x60FF):
            del ds[tag]
            continue
        todo = action(elem.keyword)
        if todo:
            _apply(ds, elem, todo, uids)
            if todo != "K" or elem.VR != "SQ":
                continue
        # Not in the table (or a kept sequence): the catch-all rules, then nested items.
        if elem.VR == "PN":
            elem.value = None
        elif elem.VR in _DATES or elem.VR in _FREE_TEXT:
            del ds[tag]
        elif elem.VR == "UI" and elem.keyword not in KEEP_UIDS:
            elem.value = _new_uid(elem.value, uids)
        elif elem.VR == "SQ":
            for item in elem.value:
                _clean(item, uids)


def deidentify(ds: Dataset) -> Dataset:
    """Apply the table, the option and the rules above to ``ds`` in place; returns it."""
    uids: dict[str, str] = {}
    _clean(ds, uids)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for keyword in META_REMOVE:
            if keyword in meta:
                delattr(meta, keyword)
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.preamble = bytes(128)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    return ds
