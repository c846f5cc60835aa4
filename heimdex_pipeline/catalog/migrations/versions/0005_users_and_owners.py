"""users, and an owner for every video and person

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:20:00

Videos and people that were there before users are the default owner's
(HEIMDEX_DEFAULT_OWNER, `local` unless set): the library a single-person install had.
"""
import os
from typing import Sequence, Union

from alembic import context, op
import sqlalchemy as sa


revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _default_owner() -> str:
    given = context.config.attributes.get("default_owner")
    return given or os.environ.get("HEIMDEX_DEFAULT_OWNER") or "local"


def upgrade() -> None:
    """Upgrade schema."""
    owner = _default_owner()
    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('token_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_users_token_sha256'))
    )
    for table in ('videos', 'people'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(
                'owner', sa.String(length=64), nullable=False, server_default=owner
            ))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('owner', server_default=None)
            batch_op.create_index(batch_op.f(f'ix_{table}_owner'), ['owner'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    for table in ('people', 'videos'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_owner'))
            batch_op.drop_column('owner')
    op.drop_table('users')
