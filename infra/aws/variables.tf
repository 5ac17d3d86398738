variable "region" {
  description = "AWS region of the instance and the KMS key (the enclave image bakes in the same one)."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name; the enclave role is <name>-enclave-host."
  type        = string
  default     = "teegate"
}

variable "key_policy_file" {
  description = "KMS key policy JSON from infra/tools/kms-policy.ts (--role-arn must be this deployment's enclave_role_arn)."
  type        = string
}

variable "instance_type" {
  description = "An enclave-capable Nitro instance with at least 4 vCPUs (2 go to the enclave)."
  type        = string
  default     = "m6i.xlarge"
}

variable "subnet_id" {
  description = "Subnet of the instance; null = the first subnet of the default VPC."
  type        = string
  default     = null
}

variable "allowed_cidrs" {
  description = "Who may reach the gateway port."
  type        = list(string)
  default     = []
}

variable "gateway_port" {
  description = "The gateway's port (TEEGATE_PORT in infra/nitro/teegate.env)."
  type        = number
  default     = 8080
}

variable "enclave_cpus" {
  description = "vCPUs reserved for enclaves by the allocator (ENCLAVE_CPUS)."
  type        = number
  default     = 2
}

variable "enclave_memory_mib" {
  description = "Memory reserved for enclaves by the allocator (ENCLAVE_MEMORY_MIB)."
  type        = number
  default     = 4096
}
