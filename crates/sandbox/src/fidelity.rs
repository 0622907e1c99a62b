//! What each Graph route and EWS operation of the sandbox implements, and what it refuses.
//!
//! The rule (issue #22): **no part of a request is skipped**. A query option, header, body
//! property, restriction, view or attachment is either applied, or refused with the error
//! Microsoft gives for that kind of part, so a client that works against the sandbox does not
//! rely on something the sandbox merely did not look at. Where Microsoft accepts a form, the
//! sandbox accepts it too (action parameters in any case; `saveToSentItems` as the string its
//! own sample sends; `xs:boolean` `1`/`0`). A few parts are *accepted without effect* because
//! they change nothing for the items the sandbox holds (it holds messages only: no calendar,
//! contacts, tasks or folder-associated items); each is named below with the reason.
//!
//! Two kinds of refusal:
//!
//! - what Microsoft itself refuses, with Microsoft's code (an unknown property, a header name
//!   that does not start with `x-`, a `FieldURI` the schema does not know, …);
//! - what Microsoft serves and the sandbox does not implement: Graph 400 `notSupported`
//!   ("The sandbox does not implement …"), or `ErrorInvalidUrlQuery` for a query option; EWS the
//!   response code Exchange uses for that kind of part (`ErrorUnsupportedQueryFilter`,
//!   `ErrorUnsupportedPathForQuery`, `ErrorUnsupportedPathForSortGroup`,
//!   `ErrorInvalidPropertyRequest`, …) or `ErrorInvalidRequest`, the message saying what the
//!   sandbox does not implement.
//!
//! The tests `strict_graph.rs` and `strict_ews.rs` (in `tests/it/`) show every refusal and every
//! part applied; `samples.rs` replays Microsoft's documented request samples (below).
//!
//! # Microsoft Graph v1.0
//!
//! ## Every request
//!
//! - `Authorization: Bearer` (401 `InvalidAuthenticationToken` with `WWW-Authenticate`), the
//!   mailbox and permission check (403 `ErrorAccessDenied`, 404 `ErrorInvalidUser`), throttling
//!   (429 with `Retry-After`) — see [`crate::Sandbox`].
//! - Paths: `/me/…` (delegated tokens) and `/users/{id|upn}/…`. A path no route serves: 400
//!   `BadRequest` "Resource not found for the segment '…'"; a method a route does not take: 405.
//! - `client-request-id` is echoed; `request-id` is set.
//! - `Prefer`: `IdType="ImmutableId"` (immutable ids), `outlook.body-content-type="text"|"html"`
//!   (bodies converted, `Preference-Applied` says so; another value 400 `BadRequest`),
//!   `odata.maxpagesize=N` on delta (with `Preference-Applied`). Other preferences are not
//!   applied and not named in `Preference-Applied`, which is how HTTP lets a server decline a
//!   preference (RFC 7240); Graph itself ignores the Outlook preferences that concern events
//!   (`outlook.timezone`) on messages, and `odata.maxpagesize` is honoured on delta only here —
//!   lists page by `$top`.
//! - `If-Match`, `If-None-Match`: 400 `notSupported` (conditional requests are not implemented).
//! - Headers that change nothing in a mail answer are not read: `Accept` (answers are JSON, or
//!   the MIME of `$value`), `Accept-Encoding`, `User-Agent`, `SdkVersion`, `X-AnchorMailbox`,
//!   `ConsistencyLevel` (it concerns directory queries).
//! - Query options: each route takes those listed below. Any other OData system option (`$search`,
//!   `$expand`, `$count` where not listed, `$format`, …): 400 `ErrorInvalidUrlQuery`; any other
//!   name (`$foo`, `cachebuster`): 400 `BadRequest` "The query parameter '…' is not supported."
//!   `$select` of a property the type does not have: 400 `RequestBroker--ParseUri`.
//! - JSON bodies: `Content-Type` must be JSON (415 otherwise). A property the entity type does not
//!   have, or a parameter the action does not have: 400 `RequestBodyRead`. Action parameters
//!   match without regard to case (`Message`, `SaveToSentItems`, `DestinationId`), as in Graph.
//!
//! ## `GET mailFolders`, `GET mailFolders/{id}/childFolders`
//!
//! Implemented: `$filter=displayName eq '…'` (any other filter 400 `BadRequest`),
//! `includeHiddenFolders`, `$select`, `$top` (1–1000, default 10 as Graph pages folders), `$skip`
//! with `@odata.nextLink`, `$count`.
//!
//! ## `GET mailFolders/{id}`
//!
//! Implemented: well-known names and ids, `$select`. `mailFolders/delta` (delta of the folder
//! tree) is refused (`notSupported`).
//!
//! ## `POST mailFolders`, `POST mailFolders/{id}/childFolders`
//!
//! Implemented: `displayName` (409 `ErrorFolderExists` when taken), `@odata.type`
//! `#microsoft.graph.mailFolder`, `isHidden: false`. Refused: `isHidden: true` and the other
//! properties (`notSupported`).
//!
//! ## `GET messages`, `GET mailFolders/{id}/messages`
//!
//! Implemented: `$select`; `$filter` with `and` of `isRead eq|ne true|false` and
//! `receivedDateTime eq|ge|gt|le|lt {date-time}` (other filters 400 `BadRequest` "Invalid filter
//! clause"); `$orderby=receivedDateTime [asc|desc]` with Graph's rule that it comes first in
//! `$filter` (400 `InefficientFilter`; another property 400 `BadRequest`); `$top` (1–1000,
//! default 10); `$skip` and `@odata.nextLink`; `$count=true` (`@odata.count`). Refused:
//! `$search`, `$expand` (`ErrorInvalidUrlQuery`).
//!
//! ## `GET messages/{id}`, `GET messages/{id}/$value`
//!
//! Implemented: `$select` (`internetMessageHeaders` only when selected, as in Graph), body kind;
//! `$value` is the MIME. Refused: `$expand` (attachments, extended properties, event of an event
//! message: `ErrorInvalidUrlQuery`); any query option on `$value`.
//!
//! ## `PATCH messages/{id}`
//!
//! Implemented: `isRead`, `$select` on the answer, `@odata.type` `#microsoft.graph.message`.
//! Refused: every other property of a message (`subject`, `body`, `categories`, `flag`, …:
//! `notSupported`).
//!
//! ## `DELETE messages/{id}`
//!
//! Implemented: soft delete (Recoverable Items), 204.
//!
//! ## `POST messages/{id}/move`
//!
//! Implemented: `destinationId` (id or well-known name), 201 with the moved message. Another
//! parameter: `RequestBodyRead`.
//!
//! ## `POST sendMail`, `POST messages`, `POST mailFolders/{id}/messages` (drafts)
//!
//! MIME (`Content-Type: text/plain`, base64; bad base64 400
//! `ErrorMimeContentInvalidBase64String`) or JSON. `sendMail` parameters: `message`,
//! `saveToSentItems` (boolean, or the strings `"true"`/`"false"`); another parameter:
//! `RequestBodyRead`. Message properties applied: `subject`, `body` (`contentType` text or
//! html), `from` (checked against Send As / Send on Behalf), `toRecipients`, `ccRecipients`,
//! `bccRecipients`, `replyTo`, `internetMessageHeaders` (names must start with `x-`: 400
//! `InvalidInternetMessageHeader`), `importance`, `isReadReceiptRequested`
//! (`Disposition-Notification-To`), `internetMessageId`, `attachments` of
//! `#microsoft.graph.fileAttachment` (`name`, `contentType`, `contentBytes`, `isInline`,
//! `contentId`). Accepted at their defaults only (the state of every sandbox message):
//! `categories: []`, `flag` not flagged, `isDeliveryReceiptRequested: false`,
//! `inferenceClassification: focused`, `isRead: true`. Refused (`notSupported`): any other value
//! of those, `sender`, `singleValueExtendedProperties`, `multiValueExtendedProperties`,
//! `extensions`, `uniqueBody`, read-only properties, item and reference attachments.
//!
//! ## `POST messages/{id}/send`
//!
//! Implemented: sends a draft (400 `ErrorInvalidOperation` for a message that is not one;
//! 411 without `Content-Length`).
//!
//! ## `POST messages/{id}/attachments`, `…/attachments/createUploadSession`, upload `PUT`s
//!
//! Implemented: `#microsoft.graph.fileAttachment` with `name`, `contentType`, `contentBytes`,
//! `isInline`, `contentId` (the `@odata.type` is required: `attachment` is abstract). Upload
//! sessions: `AttachmentItem` with `attachmentType: file`, `name`, `size` (≤ 150 MB),
//! `contentType`, `isInline`, `contentId`; chunks with `Content-Range`, no `Authorization`.
//! Refused: item and reference attachments, `attachmentType` item/reference (`notSupported`),
//! other members (`RequestBodyRead`).
//!
//! ## `GET mailFolders/{id}/messages/delta`
//!
//! Implemented: `$select`, `$top` and `Prefer: odata.maxpagesize` (page size, default 10),
//! `$filter=receivedDateTime ge|gt {date-time}` (removals are always reported),
//! `changeType=created|updated|deleted`, `$skiptoken`/`$deltatoken` (410 `syncStateNotFound`
//! for one the sandbox did not issue); the options are carried into the links. Refused: other
//! filters (400 `ErrorInvalidUrlQueryFilter`), `$orderby`, `$expand`, `$search`, `$skip`
//! (`ErrorInvalidUrlQuery`).
//!
//! ## `POST $batch`
//!
//! Implemented: up to 20 requests with `id`, `method`, `url` (relative), `headers` (the outer
//! `Prefer` applies unless an item sets its own), `body` (JSON, or base64 for other content
//! types; `Content-Type` required with a body), `dependsOn` (424 after a failed dependency); each
//! item is checked like a request of its own. msgraph-core's `depends_on` (the official Python
//! SDK writes it instead of `dependsOn`) is accepted and not applied, as Graph serves such
//! batches. Items run up to four at a time, each holding a concurrency slot of its own (429
//! inside the batch when the mailbox has none free); a batch with `dependsOn` runs one item at
//! a time, as Graph documents for Outlook resources. Refused: another member of an item (400
//! `BadRequest`), more than 20 items, duplicate ids, unknown or circular dependencies.
//! `/subscriptions` is not served inside a batch (400 "Resource not found for the segment").
//!
//! ## `POST/GET/PATCH/DELETE subscriptions`, `POST subscriptions/{id}/reauthorize`
//!
//! Change notifications on a mailbox's messages (issue #20; validation, notification shapes,
//! retries and faults are in the private `notify` module). Implemented: `resource`
//! `me/messages`, `users/{id|upn}/messages` (also `users('…')`), each with
//! `mailFolders('{folder}')/messages` or `mailFolders/{folder}/messages` (well-known names and
//! ids; leading `/` optional; 404 `ErrorInvalidUser` / `ErrorItemNotFound` as for the
//! mailbox routes, 403 without read access); `changeType: "created"`; `notificationUrl` and
//! `lifecycleNotificationUrl`, each validated before the subscription exists (400
//! `ValidationError` when the answer is not 200 `text/plain` with the token within 10 seconds;
//! `PATCH` of `notificationUrl` validates the new one); `clientState` (at most 128 characters);
//! `expirationDateTime` (in the future, at most 10,080 minutes ahead: 400 `ExtensionError`
//! "Subscription expiration can only be 10080 minutes in the future.", Graph's code and wording
//! for this limit); `latestSupportedTlsVersion` (`v1_0`…`v1_3`, stored, not applied: the sandbox
//! speaks whatever TLS the subscriber's URL offers); `includeResourceData: false`,
//! `notificationContentType: "application/json"`, `@odata.type`. `GET` lists and reads the
//! caller app's subscriptions (a delegated caller's own); another app's is 404
//! `ResourceNotFound`, as is an expired one. `PATCH` takes `expirationDateTime` and
//! `notificationUrl` only (another subscription property: 400 `InvalidRequest`); `reauthorize`
//! answers 204. Throttling and the fault plan apply as on the mailbox routes.
//! Refused: `changeType` `updated`/`deleted` and notifications with resource data
//! (`includeResourceData: true`, `encryptionCertificate`, `encryptionCertificateId`),
//! `notificationQueryOptions`, `notificationUrlAppId`, a `resource` with query options, other
//! resources (`notSupported`); an unknown `changeType`, a missing required property, a read-only
//! one (`id`, `applicationId`, `creatorId`), an expiry in the past or unparseable, and an `http`
//! URL to a host that is not loopback (400 `InvalidRequest`; Graph requires https — the
//! sandbox lets loopback `http` through because its subscribers are tests without TLS); any
//! query option (`ErrorInvalidUrlQuery` / `BadRequest`). Not modelled: the limit of 1,000
//! subscriptions per mailbox, the `reauthorizationRequired` Graph sends on its own (the admin
//! API sends lifecycle events), and retries beyond 1, 2 and 4 seconds (Graph retries for up to
//! 4 hours). Codes not given by Microsoft's reference and taken from reports of Graph's
//! answers: `ValidationError`, `InvalidRequest`, `ResourceNotFound`.
//!
//! # Exchange Web Services
//!
//! ## Every request: SOAP headers
//!
//! - `RequestServerVersion`: checked (`ErrorInvalidServerVersion`).
//! - `ExchangeImpersonation`: selects the mailbox; app-only tokens must send it.
//! - `TimeZoneContext`: accepted. Item times are answered in UTC as Exchange does; a zoneless time
//!   in a restriction (which Exchange would read in this zone) is refused
//!   (`ErrorInvalidRestriction`).
//! - `MailboxCulture`: accepted (the sandbox's texts are English); a malformed name
//!   `ErrorUnsupportedCulture`.
//! - `DateTimePrecision`: `Seconds` accepted (the sandbox's times are whole seconds);
//!   `Milliseconds` refused (`ErrorInvalidRequest`).
//! - `ManagementRole`: refused (`ErrorInvalidManagementRoleHeader`); `SerializedSecurityContext`:
//!   refused (`ErrorInvalidSerializedAccessToken`); any other header: `ErrorSchemaValidation`.
//! - An operation the sandbox does not implement: SOAP fault `ErrorInvalidRequest` naming it.
//! - HTTP headers: `Authorization` (bearer token) is read; `X-AnchorMailbox` (a routing hint
//!   for Exchange Online's front ends) and `SOAPAction` change nothing here and are not read.
//!
//! ## Item shapes (`ItemShape` of GetItem, FindItem, SyncFolderItems)
//!
//! - `BaseShape` `IdOnly`, `Default`, `AllProperties` (required: `ErrorSchemaValidation`);
//!   `IncludeMimeContent`; `BodyType` `Best`, `HTML`, `Text` (bodies converted).
//! - `AdditionalProperties/FieldURI`: every path of the schema is accepted (another:
//!   `ErrorSchemaValidation`). Returned with a value: `item:MimeContent`, `ParentFolderId`,
//!   `ItemClass`, `Subject`, `Body`, `Attachments` (file attachments: id, name, content type,
//!   content id, size, inline; GetAttachment is not implemented), `DateTimeReceived`, `Size`,
//!   `InternetMessageHeaders`,
//!   `DateTimeSent`, `DateTimeCreated`, `HasAttachments`, `message:Sender`, `ToRecipients`,
//!   `CcRecipients`, `BccRecipients`, `From`, `InternetMessageId`, `IsRead`, `ReplyTo`. Every other
//!   path is answered without a value, as Exchange leaves out a property an item has none of:
//!   the sandbox's messages have no categories, reminders, flags or conversation data, and no
//!   properties of other item types (`calendar:*`, `contacts:*`, …). exchangelib asks for all of
//!   them on every GetItem.
//! - `ExtendedFieldURI PropertyTag="0x007D" PropertyType="String"` (`PR_TRANSPORT_MESSAGE_HEADERS`):
//!   the header block. Other extended properties and `IndexedFieldURI`:
//!   `ErrorInvalidPropertyRequest`.
//! - `UniqueBodyType`, `NormalizedBodyType`: accepted (they format properties answered without a
//!   value); `ConvertHtmlCodePageToUTF8` true (bodies are UTF-8), `FilterHtmlContent`,
//!   `BlockExternalImages`, `AddBlankTargetToLinks` false: accepted. Any other value or option
//!   (`InlineImageUrlTemplate`, `MaximumBodySize`, …): `ErrorInvalidRequest`.
//!
//! ## Folder shapes (`FolderShape` of GetFolder, FindFolder)
//!
//! `BaseShape` (`IdOnly`: the id; `Default`: name and counts; `AllProperties`: also parent and
//! class) and `AdditionalProperties/FieldURI` (schema paths; `folder:DisplayName`, `FolderClass`,
//! `ParentFolderId`, `TotalCount`, `ChildFolderCount`, `UnreadCount` have values, the rest none).
//!
//! ## FindItem
//!
//! - `Traversal`: `Shallow`; `Associated` (the sandbox's folders hold no associated items: an
//!   empty view). `Deep`, `SoftDeleted`: `ErrorInvalidRequest`.
//! - `Restriction`: `IsEqualTo`/`IsNotEqualTo` on `message:IsRead`; `IsEqualTo`,
//!   `IsGreaterThan[OrEqualTo]`, `IsLessThan[OrEqualTo]` on `item:DateTimeReceived` (with a
//!   zone); `And` of those. Another property: `ErrorUnsupportedPathForQuery`; `Or`, `Not`,
//!   `Contains`, `Excludes`, `Exists`, comparing two properties:
//!   `ErrorUnsupportedQueryFilter`; malformed: `ErrorInvalidRestriction`.
//! - `SortOrder`: one `FieldOrder` on `item:DateTimeReceived`; anything else
//!   `ErrorUnsupportedPathForSortGroup`.
//! - Paging: `IndexedPageItemView` (`BasePoint` Beginning or End, ≤ 1000); `FractionalPageItemView`
//!   (`NumeratorOffset`/`AbsoluteDenominator` in the answer; a fraction above 1
//!   `ErrorInvalidFractionalPagingParameters`); `CalendarView`:
//!   `ErrorCalendarFolderIsInvalidForCalendarView`; `ContactsView`,
//!   `SeekToConditionPageItemView`, `GroupBy`, `DistinguishedGroupBy`, `QueryString`:
//!   `ErrorInvalidRequest`.
//! - `ParentFolderIds`: each folder gets its own response message.
//!
//! ## GetItem
//!
//! `ItemIds/ItemId` (many; per-item `ErrorInvalidIdMalformed`, `ErrorItemNotFound`,
//! `ErrorAccessDenied`), the item shape above. `OccurrenceItemId`, `RecurringMasterItemId` (any
//! operation): `ErrorInvalidRequest` (no calendar items).
//!
//! ## UpdateItem
//!
//! `SetItemField` on `message:IsRead` with `MessageDisposition="SaveOnly"` (required:
//! `ErrorMessageDispositionRequired`); `ConflictResolution` (a stale `ChangeKey` is
//! `ErrorIrresolvableConflict` unless `AlwaysOverwrite`). `SuppressReadReceipts` and
//! `SendMeetingInvitationsOrCancellations` are accepted (the sandbox sends no read receipts and
//! holds no meetings). Refused: other updates (`ErrorInvalidPropertySet`), `SendOnly` /
//! `SendAndSaveCopy` and `SavedItemFolderId` (`ErrorInvalidRequest`: save, then SendItem).
//!
//! ## MoveItem, CopyItem, DeleteItem
//!
//! `ToFolderId`, `ReturnNewItemIds`; moving between mailboxes `ErrorMoveCopyFailed`. DeleteItem:
//! every `DeleteType`; `SendMeetingCancellations`, `AffectedTaskOccurrences` and
//! `SuppressReadReceipts` are accepted (no meetings, tasks or read receipts in the sandbox).
//!
//! ## CreateItem, SendItem
//!
//! `MessageDisposition` `SaveOnly` (to `SavedItemFolderId` or Drafts), `SendOnly`,
//! `SendAndSaveCopy` (the copy to Sent Items; another `SavedItemFolderId`: `ErrorInvalidRequest`);
//! `SendMeetingInvitations` is accepted (no meetings). Items other than `t:Message`:
//! `ErrorInvalidItemForOperationCreateItem`. Message fields: see the list in
//! `ews/ops/item_fields.rs` — `MimeContent`, `Subject`, `Body`, `From`, recipients, `ReplyTo`,
//! `Importance`, `Sensitivity`, `IsReadReceiptRequested`, `InReplyTo`, `References`,
//! `Attachments/FileAttachment` (name, content type, content, `IsInline`, `ContentId`),
//! `ExtendedProperty` headers of the `InternetHeaders` set, `IsRead` applied;
//! `IsDeliveryReceiptRequested`, `IsResponseRequested`, `ReminderIsSet` false,
//! `ReminderMinutesBeforeStart` and empty `Categories` accepted; read-only properties
//! `ErrorInvalidPropertySet`; anything else (item attachments, other extended properties,
//! categories, …) `ErrorInvalidRequest`. SendItem: `SaveItemToFolder`; a `SavedItemFolderId`
//! other than `sentitems`: `ErrorInvalidRequest`.
//!
//! ## SyncFolderItems
//!
//! `ItemShape`, `SyncFolderId`, `SyncState` (`ErrorInvalidSyncStateData` for one the sandbox did
//! not issue), `Ignore` (those items' changes left out), `MaxChangesReturned` (required, 1–512;
//! otherwise `ErrorSchemaValidation`),
//! `SyncScope` (both values: no associated items).
//!
//! ## Subscribe, GetStreamingEvents, Unsubscribe (streaming notifications)
//!
//! Implemented (issue #20): `StreamingSubscriptionRequest` with `FolderIds` (distinguished or
//! by id, one mailbox; a missing one `ErrorInvalidSubscriptionRequest`) and `EventTypes`
//! `NewMailEvent` (a message delivered or copied into the folder, not a draft or a move) and
//! `CreatedEvent` (any message appearing there); the answer's `SubscriptionId`.
//! GetStreamingEvents with `SubscriptionIds` and `ConnectionTimeout` (1–30 minutes, else
//! `ErrorSchemaValidation`): a long-lived 200 answer, one whole SOAP envelope after another —
//! a `t:Notification` per subscription with its events (`TimeStamp`, `ItemId` with
//! `ChangeKey`, `ParentFolderId`) as they happen, `ConnectionStatus` `OK` after 30 seconds
//! without any, `Closed` at the timeout or when the subscription is unsubscribed; events that
//! arrive without a connection wait for the next one. An unknown subscription: 200 with
//! `ErrorInvalidSubscription`, `ErrorSubscriptionIds` and `Closed` (one another account made:
//! `ErrorSubscriptionAccessDenied`, "Only the subscription owner may access the subscription";
//! the owner is the account that subscribed, so a delegate owns her subscription to a shared
//! mailbox). Unsubscribe: `ErrorSubscriptionNotFound` for an unknown
//! id. Refused (`ErrorInvalidRequest`): pull and push subscriptions, `SubscribeToAllFolders`,
//! the other event types (Copied, Deleted, Modified, Moved, FreeBusyChanged). Not modelled: a
//! subscription's expiry after 30 minutes without a connection, watermarks, and the
//! per-mailbox limit on subscriptions and connections. A fault of the admin API,
//! `set_ews_streaming_down`, models a mailbox server failing over: every subscription is lost
//! (open connections end `Closed`; the ids are then unknown), and Subscribe and
//! GetStreamingEvents answer 503 with `Retry-After: 1` until it is lifted, while mail keeps
//! arriving and the other operations work.
//!
//! SyncFolderItems reports a read-flag change as an `Update` of the item (Exchange sends a
//! `ReadFlagChange` for it when the shape is `IdOnly`); `AdditionalProperties` of the shape
//! (`message:IsRead`, `item:DateTimeReceived`…) are written on created and updated items.
//!
//! ## GetFolder, FindFolder, CreateFolder
//!
//! GetFolder: `FolderShape`, `FolderIds` (`DistinguishedFolderId` with `Mailbox`, `FolderId`).
//! FindFolder: `Traversal` `Shallow`/`Deep` (`SoftDeleted`: `ErrorInvalidRequest`),
//! `IndexedPageFolderView`, `Restriction` `IsEqualTo` on `folder:DisplayName` (another property
//! `ErrorUnsupportedPathForQuery`, another expression `ErrorUnsupportedQueryFilter`);
//! `FractionalPageFolderView`: `ErrorInvalidRequest`. CreateFolder: `t:Folder` with
//! `DisplayName` and class `IPF.Note`; other folder kinds, classes and properties:
//! `ErrorInvalidRequest`.
//!
//! ## ResolveNames, ConvertId
//!
//! ResolveNames: the directory, by address, else by ambiguous name resolution (a prefix of a
//! display name, of a word of it, or of an address's local part; several matches are a
//! `Warning` with `ErrorNameResolutionMultipleResults`); `ReturnFullContactData` true and
//! `ContactDataShape`: `ErrorInvalidRequest`; `SearchScope` `Contacts` finds nothing (no
//! contacts), the others search the directory. ConvertId: per-id `ErrorInvalidIdMalformed` /
//! `ErrorItemNotFound`, or `ErrorInvalidRequest` (no conversion between id formats).
//!
//! # Microsoft's documented request samples
//!
//! `tests/it/samples.rs` sends every request sample of the Exchange and Graph documentation
//! (`testdata/reference/samples`: 287 EWS, 77 Graph) to the sandbox and records the answer of
//! each in `tests/it/samples.expected`; the test fails when one changes, and every EWS answer is
//! validated against the schema. Answered: the samples of the operations above that fit a
//! mailbox of messages (their ids are the docs' placeholders, so most get the per-item
//! `ErrorInvalidIdMalformed` or `ErrorItemNotFound` in a valid answer). Refused by name: the
//! operations the sandbox does not implement (fault `ErrorInvalidRequest`), calendar, contact
//! and task items (`ErrorInvalidItemForOperationCreateItem`), and the parts listed above. Graph
//! samples of resources the sandbox does not serve (events, message rules, mailbox settings,
//! subscriptions, `/me` profile) get 400 `BadRequest` "Resource not found for the segment";
//! `beta` URLs are not served at all (404).
