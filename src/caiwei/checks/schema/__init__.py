"""The logical schema's constraints 表结构约束 (``model``) and the rule files generated from them (``generate``)."""
