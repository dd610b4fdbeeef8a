//! Open enums of the wire models: every one is `#[non_exhaustive]` with an `Unknown(String)`
//! case that keeps, and writes back, any value this version does not know.
//!
//! Values and their spellings are from Plaid's official API spec (2020-09-14).

use super::open_enum::open_enum;

open_enum! {
    /// Whether an Item needs the user present to update (spec `Item.update_type`).
    pub enum ItemUpdateType {
        /// Plaid can update the Item in the background.
        Background = "background",
        /// The Item has MFA or similar and updates only when the user is present in Link.
        UserPresentRequired = "user_present_required",
    }
}

open_enum! {
    /// How a transaction was made (spec `Transaction.payment_channel`).
    pub enum PaymentChannel {
        /// Online.
        Online = "online",
        /// At a physical location.
        InStore = "in store",
        /// Bank-related: fees, deposits.
        Other = "other",
    }
}

open_enum! {
    /// The deprecated transaction type, replaced by [`PaymentChannel`] (spec
    /// `Transaction.transaction_type`).
    pub enum TransactionType {
        Digital = "digital",
        Place = "place",
        Special = "special",
        Unresolved = "unresolved",
    }
}

open_enum! {
    /// The type of an account (spec `AccountType`).
    pub enum AccountType {
        Investment = "investment",
        Credit = "credit",
        Depository = "depository",
        Loan = "loan",
        Brokerage = "brokerage",
        Other = "other",
    }
}

open_enum! {
    /// The subtype of an account (spec `AccountSubtype`).
    pub enum AccountSubtype {
        Plan401a = "401a",
        Plan401k = "401k",
        Plan403b = "403B",
        Plan457b = "457b",
        Plan529 = "529",
        Auto = "auto",
        Brokerage = "brokerage",
        Business = "business",
        CashIsa = "cash isa",
        CashManagement = "cash management",
        Cd = "cd",
        Checking = "checking",
        Commercial = "commercial",
        Construction = "construction",
        Consumer = "consumer",
        CreditCard = "credit card",
        CryptoExchange = "crypto exchange",
        Ebt = "ebt",
        EducationSavingsAccount = "education savings account",
        Fhsa = "fhsa",
        FixedAnnuity = "fixed annuity",
        Gic = "gic",
        HealthReimbursementArrangement = "health reimbursement arrangement",
        HomeEquity = "home equity",
        Hsa = "hsa",
        Isa = "isa",
        Ira = "ira",
        Keogh = "keogh",
        Lif = "lif",
        LifeInsurance = "life insurance",
        LimitedPurposeChecking = "limited purpose checking",
        LineOfCredit = "line of credit",
        Lira = "lira",
        Loan = "loan",
        Lrif = "lrif",
        Lrsp = "lrsp",
        MoneyMarket = "money market",
        Mortgage = "mortgage",
        MutualFund = "mutual fund",
        NonCustodialWallet = "non-custodial wallet",
        NonTaxableBrokerageAccount = "non-taxable brokerage account",
        Other = "other",
        OtherInsurance = "other insurance",
        OtherAnnuity = "other annuity",
        Overdraft = "overdraft",
        Paypal = "paypal",
        Payroll = "payroll",
        Pension = "pension",
        Prepaid = "prepaid",
        Prif = "prif",
        ProfitSharingPlan = "profit sharing plan",
        Qshr = "qshr",
        Rdsp = "rdsp",
        Resp = "resp",
        Retirement = "retirement",
        Rlif = "rlif",
        Roth = "roth",
        Roth401k = "roth 401k",
        Roth403b = "roth 403B",
        Roth457b = "roth 457b",
        RothPension = "roth pension",
        RothProfitSharingPlan = "roth profit sharing plan",
        RothThriftSavingsPlan = "roth thrift savings plan",
        Rrif = "rrif",
        Rrsp = "rrsp",
        Sarsep = "sarsep",
        Savings = "savings",
        SepIra = "sep ira",
        SimpleIra = "simple ira",
        Sipp = "sipp",
        StockPlan = "stock plan",
        Student = "student",
        ThriftSavingsPlan = "thrift savings plan",
        Tfsa = "tfsa",
        Trust = "trust",
        Ugma = "ugma",
        Utma = "utma",
        VariableAnnuity = "variable annuity",
    }
}

open_enum! {
    /// A Plaid product (spec `Products`).
    pub enum Product {
        Assets = "assets",
        Auth = "auth",
        Balance = "balance",
        BalancePlus = "balance_plus",
        Beacon = "beacon",
        Identity = "identity",
        IdentityMatch = "identity_match",
        Investments = "investments",
        InvestmentsAuth = "investments_auth",
        Liabilities = "liabilities",
        PaymentInitiation = "payment_initiation",
        IdentityVerification = "identity_verification",
        Transactions = "transactions",
        CreditDetails = "credit_details",
        Income = "income",
        IncomeVerification = "income_verification",
        StandingOrders = "standing_orders",
        Transfer = "transfer",
        Employment = "employment",
        RecurringTransactions = "recurring_transactions",
        TransactionsRefresh = "transactions_refresh",
        Signal = "signal",
        Statements = "statements",
        ProcessorPayments = "processor_payments",
        ProcessorIdentity = "processor_identity",
        Profile = "profile",
        CraBaseReport = "cra_base_report",
        CraIncomeInsights = "cra_income_insights",
        CraPartnerInsights = "cra_partner_insights",
        CraNetworkInsights = "cra_network_insights",
        CraCashflowInsights = "cra_cashflow_insights",
        CraMonitoring = "cra_monitoring",
        CraLendScore = "cra_lend_score",
        CraPlaidCreditScore = "cra_plaid_credit_score",
        Layer = "layer",
        PayByBank = "pay_by_bank",
        ProtectLinkedBank = "protect_linked_bank",
        ProtectTransactions = "protect_transactions",
    }
}

open_enum! {
    /// An ISO-3166-1 alpha-2 country code Plaid supports (spec `CountryCode`).
    pub enum CountryCode {
        Us = "US",
        Gb = "GB",
        Es = "ES",
        Nl = "NL",
        Fr = "FR",
        Ie = "IE",
        Ca = "CA",
        De = "DE",
        It = "IT",
        Pl = "PL",
        Dk = "DK",
        No = "NO",
        Se = "SE",
        Ee = "EE",
        Lt = "LT",
        Lv = "LV",
        Pt = "PT",
        Be = "BE",
        At = "AT",
        Fi = "FI",
    }
}

open_enum! {
    /// How far the transactions of an Item are updated (spec `TransactionsUpdateStatus`).
    pub enum TransactionsUpdateStatus {
        TransactionsUpdateStatusUnknown = "TRANSACTIONS_UPDATE_STATUS_UNKNOWN",
        NotReady = "NOT_READY",
        InitialUpdateComplete = "INITIAL_UPDATE_COMPLETE",
        HistoricalUpdateComplete = "HISTORICAL_UPDATE_COMPLETE",
    }
}

open_enum! {
    /// An institution-provided transaction code (spec `TransactionCode`, mostly outside the US).
    pub enum TransactionCode {
        Adjustment = "adjustment",
        Atm = "atm",
        BankCharge = "bank charge",
        BillPayment = "bill payment",
        Cash = "cash",
        Cashback = "cashback",
        Cheque = "cheque",
        DirectDebit = "direct debit",
        Interest = "interest",
        Payment = "payment",
        Purchase = "purchase",
        Refund = "refund",
        StandingOrder = "standing order",
        Transfer = "transfer",
    }
}

open_enum! {
    /// The kind of counterparty of a transaction (spec `CounterpartyType`).
    pub enum CounterpartyType {
        Merchant = "merchant",
        FinancialInstitution = "financial_institution",
        PaymentApp = "payment_app",
        Marketplace = "marketplace",
        PaymentTerminal = "payment_terminal",
        IncomeSource = "income_source",
    }
}

open_enum! {
    /// A webhook type that `/sandbox/item/fire_webhook` can fire (spec `WebhookType`).
    pub enum WebhookType {
        Auth = "AUTH",
        Holdings = "HOLDINGS",
        InvestmentsTransactions = "INVESTMENTS_TRANSACTIONS",
        Item = "ITEM",
        Liabilities = "LIABILITIES",
        Transactions = "TRANSACTIONS",
        Assets = "ASSETS",
    }
}

open_enum! {
    /// A webhook code that `/sandbox/item/fire_webhook` can fire.
    pub enum SandboxWebhookCode {
        DefaultUpdate = "DEFAULT_UPDATE",
        NewAccountsAvailable = "NEW_ACCOUNTS_AVAILABLE",
        SmsMicrodepositsVerification = "SMS_MICRODEPOSITS_VERIFICATION",
        AuthorizationGranted = "AUTHORIZATION_GRANTED",
        UserPermissionRevoked = "USER_PERMISSION_REVOKED",
        UserAccountRevoked = "USER_ACCOUNT_REVOKED",
        PendingDisconnect = "PENDING_DISCONNECT",
        RecurringTransactionsUpdate = "RECURRING_TRANSACTIONS_UPDATE",
        LoginRepaired = "LOGIN_REPAIRED",
        SyncUpdatesAvailable = "SYNC_UPDATES_AVAILABLE",
        ProductReady = "PRODUCT_READY",
        Error = "ERROR",
    }
}

open_enum! {
    /// How Auth data was populated for an Item (spec `ItemAuthMethod`).
    pub enum ItemAuthMethod {
        InstantAuth = "INSTANT_AUTH",
        InstantMatch = "INSTANT_MATCH",
        AutomatedMicrodeposits = "AUTOMATED_MICRODEPOSITS",
        SameDayMicrodeposits = "SAME_DAY_MICRODEPOSITS",
        InstantMicrodeposits = "INSTANT_MICRODEPOSITS",
        DatabaseMatch = "DATABASE_MATCH",
        DatabaseInsights = "DATABASE_INSIGHTS",
        TransferMigrated = "TRANSFER_MIGRATED",
        InvestmentsFallback = "INVESTMENTS_FALLBACK",
    }
}

open_enum! {
    /// Why an Item is removed (spec `ItemRemoveReasonCode`).
    pub enum ItemRemoveReasonCode {
        FraudFirstParty = "FRAUD_FIRST_PARTY",
        FraudFalseIdentity = "FRAUD_FALSE_IDENTITY",
        FraudAbuse = "FRAUD_ABUSE",
        FraudOther = "FRAUD_OTHER",
        ConnectionIsNonFunctional = "CONNECTION_IS_NON_FUNCTIONAL",
        Other = "OTHER",
    }
}

open_enum! {
    /// The personal finance category taxonomy version (spec `PersonalFinanceCategoryVersion`).
    pub enum PersonalFinanceCategoryVersion {
        V1 = "v1",
        V2 = "v2",
    }
}

open_enum! {
    /// Whether an account is personal or business (spec `AccountHolderCategory`).
    pub enum AccountHolderCategory {
        Business = "business",
        Personal = "personal",
        Unrecognized = "unrecognized",
    }
}

open_enum! {
    /// The micro-deposit or database verification status of an account.
    pub enum VerificationStatus {
        AutomaticallyVerified = "automatically_verified",
        PendingAutomaticVerification = "pending_automatic_verification",
        PendingManualVerification = "pending_manual_verification",
        Unsent = "unsent",
        ManuallyVerified = "manually_verified",
        VerificationExpired = "verification_expired",
        VerificationFailed = "verification_failed",
        DatabaseMatched = "database_matched",
        DatabaseInsightsPass = "database_insights_pass",
        DatabaseInsightsPassWithCaution = "database_insights_pass_with_caution",
        DatabaseInsightsFail = "database_insights_fail",
    }
}

open_enum! {
    /// A data scope the user consented to (spec `ItemConsentedDataScope`).
    pub enum ConsentedDataScope {
        AccountBalanceInfo = "account_balance_info",
        ContactInfo = "contact_info",
        AccountRoutingNumber = "account_routing_number",
        Transactions = "transactions",
        CreditLoanInfo = "credit_loan_info",
        Investments = "investments",
        PayrollInfo = "payroll_info",
        IncomeVerificationPaystubsInfo = "income_verification_paystubs_info",
        IncomeVerificationW2sInfo = "income_verification_w2s_info",
        IncomeVerificationBankStatements = "income_verification_bank_statements",
        IncomeVerificationEmploymentInfo = "income_verification_employment_info",
        BankStatements = "bank_statements",
        RiskInfo = "risk_info",
        NetworkInsightsLite = "network_insights_lite",
        FraudInfo = "fraud_info",
    }
}
