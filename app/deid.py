"""De-identification of DICOM files before Radio stores anything of them.

Follows the DICOM PS3.15 Annex E *Basic Application Level Confidentiality Profile* with
the *Retain Institution Identity Option* (the institution name is kept, because it is the
image's source for per-site evaluation), applied to the whole dataset including nested
sequences and the file meta information:

* every private tag is removed;
* every Person Name (PN) element is removed (patient, physicians, operators...);
* every date, time and date-time (DA, TM, DT) element is removed, and the patient's age;
* every UID (UI) is replaced by a new random one, consistently inside the file, except the
  UIDs that name a *kind* of thing (SOP class, transfer syntax, implementation class);
* the identifying attributes in :data:`REMOVE` are removed (IDs, addresses, phone numbers,
  accession number, descriptions and comments, device serial number, station name...);
* overlays and curves (groups 0x50xx and 0x60xx), which can carry drawn text, are removed;
* ``PatientIdentityRemoved`` is set to ``YES`` and ``DeidentificationMethod`` says how.

Kept: the image itself and what is needed to display it, modality, view, body part,
manufacturer and model, institution name. An image whose ``BurnedInAnnotation`` is ``YES``
is refused (its pixels may show the patient's name), see ``app.dicom``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: see app/dicom.py
    from pydicom.dataset import Dataset

METHOD = "Radio: PS3.15 Basic Profile, Retain Institution Identity Option"

REMOVE = frozenset({
    "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientIDsSequence",
    "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "PatientAddress",
    "PatientTelephoneNumbers", "PatientTelecomInformation", "PatientAge", "PatientSize",
    "PatientWeight", "PatientSex", "EthnicGroup", "Occupation", "MilitaryRank",
    "BranchOfService", "CountryOfResidence", "RegionOfResidence", "MedicalRecordLocator",
    "MedicalAlerts", "Allergies", "PregnancyStatus", "SmokingStatus",
    "AdditionalPatientHistory", "PatientComments", "PatientReligiousPreference",
    "PatientInsurancePlanCodeSequence", "ReferencedPatientSequence",
    "ReferencedPatientPhotoSequence", "PatientSexNeutered", "ResponsiblePerson",
    "ResponsibleOrganization", "AccessionNumber", "StudyID", "StudyDescription",
    "SeriesDescription", "ImageComments", "RequestedProcedureDescription",
    "RequestedProcedureID", "RequestAttributesSequence", "ScheduledProcedureStepID",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription",
    "ProcedureCodeSequence", "AdmissionID", "AdmittingDiagnosesDescription",
    "ReasonForStudy", "RequestingService", "InstitutionAddress",
    "InstitutionalDepartmentName", "InstitutionCodeSequence", "StationName",
    "DeviceSerialNumber", "DetectorID", "PlateID", "CassetteID", "GantryID",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence", "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianIdentificationSequence", "OperatorIdentificationSequence",
    "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence",
    "OriginalAttributesSequence", "ModifiedAttributesSequence", "DigitalSignaturesSequence",
    "ContentSequence", "TextString", "TextComments", "DerivationDescription",
    "FrameComments", "IconImageSequence", "ClinicalTrialSponsorName",
    "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID", "ServiceEpisodeID",
    "IssuerOfAdmissionIDSequence", "PatientState", "VisitComments", "CurrentPatientLocation",
    "PatientInstitutionResidence", "AcquisitionComments", "ProtocolName",
    "RequestedContrastAgent", "TopicSubject", "TopicAuthor", "TopicKeywords", "Authorization",
})
# UIDs naming a kind of object, not an instance: they identify nobody.
KEEP_UIDS = frozenset({
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "CodingSchemeUID", "ContextGroupExtensionCreatorUID",
    "ReferencedSOPClassUIDInFile", "ReferencedTransferSyntaxUIDInFile",
})
_DATES = ("DA", "TM", "DT")


def _clean(ds: Dataset, uids: dict[str, str]) -> None:
    from pydicom.uid import generate_uid

    ds.remove_private_tags()
    for elem in list(ds):
        group = elem.tag.group
        if (elem.keyword in REMOVE or elem.VR == "PN" or elem.VR in _DATES
                or 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF):
            if elem.tag != 0x7FE00010:  # never the pixel data
                del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _clean(item, uids)
        elif elem.VR == "UI" and elem.keyword not in KEEP_UIDS and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            fresh = [uids.setdefault(str(v), generate_uid()) for v in values]
            elem.value = fresh if elem.VM > 1 else fresh[0]


def deidentify(ds: Dataset) -> Dataset:
    """Remove or replace the identifying attributes of ``ds`` in place; returns it."""
    uids: dict[str, str] = {}
    _clean(ds, uids)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _clean(meta, uids)
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    return ds
